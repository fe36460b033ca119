//! The callback dispatcher: delivers outcome events from the outbox after their decision has
//! committed, at least once, with exponential backoff on failure.
//!
//! It drives two ports (the repository's outbox half and `Callbacks`) and owns no state of its
//! own, so any number of dispatchers, in any number of processes, can run at once: the
//! repository's claim lease keeps them from delivering one event concurrently.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Notify, watch};

use super::error::WorkflowError;
use super::ports::{Callbacks, Clock, WorkflowRepository};

/// Tuning of the dispatcher.
#[derive(Debug, Clone)]
pub struct DispatchConfig {
    /// Events claimed per round.
    pub batch: u32,
    /// How long a claim keeps other dispatchers off an event.
    pub lease: Duration,
    /// Delay before the first retry; doubles with each failure.
    pub first_retry: Duration,
    /// Longest delay between retries.
    pub max_retry: Duration,
    /// How often to look for due events when nothing wakes the dispatcher.
    pub poll_interval: Duration,
}

impl Default for DispatchConfig {
    fn default() -> Self {
        Self {
            batch: 100,
            lease: Duration::from_secs(60),
            first_retry: Duration::from_secs(1),
            max_retry: Duration::from_secs(300),
            poll_interval: Duration::from_secs(1),
        }
    }
}

/// Delivers outbox events to a `Callbacks` adapter.
pub struct Dispatcher<R, K, C> {
    repo: Arc<R>,
    callbacks: Arc<K>,
    clock: Arc<C>,
    config: DispatchConfig,
}

impl<R, K, C> Dispatcher<R, K, C>
where
    R: WorkflowRepository,
    K: Callbacks,
    C: Clock,
{
    /// A dispatcher over these adapters.
    pub fn new(repo: Arc<R>, callbacks: Arc<K>, clock: Arc<C>, config: DispatchConfig) -> Self {
        Self {
            repo,
            callbacks,
            clock,
            config,
        }
    }

    /// One round: claims due events and tries each once. Returns how many were delivered.
    pub async fn run_once(&self) -> Result<usize, WorkflowError> {
        let now = self.clock.now();
        let lease_until = now + to_chrono(self.config.lease);
        let items = self
            .repo
            .claim_callbacks(now, lease_until, self.config.batch)
            .await?;
        let mut delivered = 0;
        for item in items {
            match self.callbacks.deliver(&item.event).await {
                Ok(()) => {
                    self.repo
                        .mark_callback_delivered(item.id, self.clock.now())
                        .await?;
                    delivered += 1;
                }
                Err(reason) => {
                    let retry_at = self.clock.now() + to_chrono(self.backoff(item.attempts));
                    tracing::warn!(outbox_id = item.id, attempts = item.attempts, %reason, "callback delivery failed; will retry");
                    self.repo
                        .mark_callback_failed(item.id, reason, retry_at)
                        .await?;
                }
            }
        }
        Ok(delivered)
    }

    /// Runs rounds until `shutdown` turns true: right away when `wake` is notified, else every
    /// poll interval. Store errors are logged and retried on the next round.
    pub async fn run(self, wake: Arc<Notify>, mut shutdown: watch::Receiver<bool>) {
        loop {
            if *shutdown.borrow() {
                return;
            }
            match self.run_once().await {
                // A full batch suggests more are due: go again without waiting.
                Ok(n) if n >= self.config.batch as usize => continue,
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "callback dispatch round failed"),
            }
            tokio::select! {
                _ = wake.notified() => {}
                _ = tokio::time::sleep(self.config.poll_interval) => {}
                changed = shutdown.changed() => {
                    // The sender is gone: nobody can ask for a stop any more, so stop now.
                    if changed.is_err() {
                        return;
                    }
                }
            }
        }
    }

    /// Delay before the next try after `attempts` tries.
    fn backoff(&self, attempts: i32) -> Duration {
        let exponent = u32::try_from(attempts.saturating_sub(1))
            .unwrap_or(0)
            .min(20);
        self.config
            .first_retry
            .saturating_mul(1 << exponent)
            .min(self.config.max_retry)
    }
}

fn to_chrono(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::model::{
        CallbackEvent, CallbackKind, EntityId, EntityType, EventName, InstanceId, OutboxItem,
        UserId,
    };
    use crate::domain::ports::{MockCallbacks, MockClock, MockWorkflowRepository};
    use chrono::{TimeZone, Utc};

    fn item(id: i64, attempts: i32) -> OutboxItem {
        OutboxItem {
            id,
            attempts,
            event: CallbackEvent {
                kind: CallbackKind::OnApproved,
                instance_id: InstanceId::new(7).unwrap(),
                event: EventName::new("unit.price_update_requested").unwrap(),
                entity_type: EntityType::new("unit").unwrap(),
                entity_id: EntityId::new(3).unwrap(),
                decided_by: UserId::new(2).unwrap(),
                comment: None,
                at: Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap(),
            },
        }
    }

    #[tokio::test]
    async fn delivered_events_are_marked_and_failed_ones_rescheduled_with_backoff() {
        let now = Utc.with_ymd_and_hms(2026, 1, 1, 12, 0, 0).unwrap();
        let mut clock = MockClock::new();
        clock.expect_now().return_const(now);
        let mut repo = MockWorkflowRepository::new();
        repo.expect_claim_callbacks()
            .times(1)
            .returning(|_, _, _| Box::pin(async { Ok(vec![item(1, 1), item(2, 3)]) }));
        repo.expect_mark_callback_delivered()
            .withf(|id, _| *id == 1)
            .times(1)
            .returning(|_, _| Box::pin(async { Ok(()) }));
        // Third attempt failed: 1s * 2^2 = 4s later.
        repo.expect_mark_callback_failed()
            .withf(move |id, reason, at| {
                *id == 2 && reason == "down" && *at == now + chrono::Duration::seconds(4)
            })
            .times(1)
            .returning(|_, _, _| Box::pin(async { Ok(()) }));
        let mut seq = mockall::Sequence::new();
        let mut callbacks = MockCallbacks::new();
        callbacks
            .expect_deliver()
            .times(1)
            .in_sequence(&mut seq)
            .returning(|_| Box::pin(async { Ok(()) }));
        callbacks
            .expect_deliver()
            .times(1)
            .in_sequence(&mut seq)
            .returning(|_| Box::pin(async { Err("down".to_owned()) }));
        let dispatcher = Dispatcher::new(
            Arc::new(repo),
            Arc::new(callbacks),
            Arc::new(clock),
            DispatchConfig::default(),
        );
        assert_eq!(dispatcher.run_once().await.unwrap(), 1);
    }

    #[test]
    fn backoff_doubles_and_is_capped() {
        let dispatcher = Dispatcher::new(
            Arc::new(MockWorkflowRepository::new()),
            Arc::new(MockCallbacks::new()),
            Arc::new(MockClock::new()),
            DispatchConfig::default(),
        );
        assert_eq!(dispatcher.backoff(1), Duration::from_secs(1));
        assert_eq!(dispatcher.backoff(2), Duration::from_secs(2));
        assert_eq!(dispatcher.backoff(5), Duration::from_secs(16));
        assert_eq!(dispatcher.backoff(30), Duration::from_secs(300));
    }
}
