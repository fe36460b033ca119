//! The callback dispatcher (domain core): delivers events from the outbox after the change that
//! wrote them has committed, at least once, with exponential backoff on failure.
//!
//! It drives three ports (the repository's outbox half, `EventFanOut` for each round as a whole,
//! then `Callbacks` for each event) and owns no state of its own, so any number of dispatchers, in any number of processes, can run at once: the
//! repository's claim lease keeps them from delivering one event concurrently.

use std::sync::Arc;
use std::time::Duration;

use futures_util::stream::{self, StreamExt};
use tokio::sync::{Notify, watch};
use tokio::time::Instant;

use super::error::WorkflowError;
use super::model::{FailedDelivery, Lease};
use super::ports::{Callbacks, Clock, EventFanOut, NoFanOut, WorkflowRepository};

/// Tuning of the dispatcher.
#[derive(Debug, Clone)]
pub struct DispatchConfig {
    /// Events claimed per round.
    pub batch: u32,
    /// Events of a round delivered at once.
    pub concurrency: usize,
    /// How long a claim keeps other dispatchers off an event.
    pub lease: Duration,
    /// Delay before the first retry; doubles with each failure.
    pub first_retry: Duration,
    /// Longest delay between retries.
    pub max_retry: Duration,
    /// How often a round looks at the whole queue (also when nothing wakes the dispatcher):
    /// events of other processes, retries, and leases that ran out.
    pub poll_interval: Duration,
    /// How far back a round woken by a change looks: only at events that came due this
    /// recently, which the store finds without stepping over every event it has delivered
    /// since its last vacuum. Older ones wait for the next round over the whole queue.
    pub recent: Duration,
    /// How long a wake-up waits for more events before its round: every change wakes the
    /// dispatcher, and one round per change would cost a claim, a fan-out and a mark each.
    pub gather: Duration,
    /// How often the overdue scheduler, which runs next to the dispatcher, looks for overdue
    /// steps (the events it writes are the dispatcher's to send).
    pub overdue_poll_interval: Duration,
}

impl Default for DispatchConfig {
    fn default() -> Self {
        Self {
            batch: 100,
            concurrency: 16,
            lease: Duration::from_secs(60),
            first_retry: Duration::from_secs(1),
            max_retry: Duration::from_secs(300),
            poll_interval: Duration::from_secs(1),
            recent: Duration::from_secs(5),
            gather: Duration::from_millis(20),
            overdue_poll_interval: super::overdue::DEFAULT_OVERDUE_POLL_INTERVAL,
        }
    }
}

/// Delivers outbox events to a `Callbacks` adapter, each round handed first to an
/// `EventFanOut` (none by default).
pub struct Dispatcher<R, K, C, F = NoFanOut> {
    repo: Arc<R>,
    callbacks: Arc<K>,
    clock: Arc<C>,
    fan_out: Arc<F>,
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
            fan_out: Arc::new(NoFanOut),
            config,
        }
    }

    /// The same dispatcher, handing each round to `fan_out` before the `Callbacks`.
    pub fn with_fan_out<F: EventFanOut>(self, fan_out: Arc<F>) -> Dispatcher<R, K, C, F> {
        Dispatcher {
            repo: self.repo,
            callbacks: self.callbacks,
            clock: self.clock,
            fan_out,
            config: self.config,
        }
    }
}

impl<R, K, C, F> Dispatcher<R, K, C, F>
where
    R: WorkflowRepository,
    K: Callbacks,
    C: Clock,
    F: EventFanOut,
{
    /// One round over the whole queue: claims due events, tries each once (up to
    /// `concurrency` at a time), then records the outcomes in two writes (the delivered ones,
    /// the failed ones), so that the store sees a few statements per round rather than one per
    /// event. Returns how many events were claimed.
    pub async fn run_once(&self) -> Result<usize, WorkflowError> {
        self.round(Scope::Whole).await
    }

    /// One round over `scope`: a round a change woke claims only what came due within the last
    /// `recent`.
    async fn round(&self, scope: Scope) -> Result<usize, WorkflowError> {
        let now = self.clock.now();
        let lease_until = now + to_chrono(self.config.lease);
        let due_since = match scope {
            Scope::Whole => None,
            Scope::Recent => Some(now - to_chrono(self.config.recent)),
        };
        let items = self
            .repo
            .claim_callbacks(now, lease_until, self.config.batch, due_since)
            .await?;
        let claimed = items.len();
        if claimed == 0 {
            return Ok(0);
        }
        // One fan-out for the whole round; if it fails, so does every event of the round.
        let outcomes: Vec<(Lease, i32, Result<(), String>)> =
            match self.fan_out.fan_out(&items).await {
                Err(reason) => items
                    .iter()
                    .map(|item| (item.lease(), item.attempts, Err(reason.clone())))
                    .collect(),
                Ok(()) => {
                    stream::iter(items)
                        .map(|item| async move {
                            let outcome = self.callbacks.deliver(&item).await;
                            (item.lease(), item.attempts, outcome)
                        })
                        .buffer_unordered(self.config.concurrency.max(1))
                        .collect()
                        .await
                }
            };
        let mut delivered = Vec::new();
        let mut failed = Vec::new();
        let done = self.clock.now();
        for (lease, attempts, outcome) in outcomes {
            match outcome {
                Ok(()) => delivered.push(lease),
                Err(reason) => {
                    tracing::warn!(outbox_id = lease.id, attempts, %reason, "event delivery failed; will retry");
                    failed.push(FailedDelivery {
                        lease,
                        error: reason,
                        retry_at: done + to_chrono(self.backoff(attempts)),
                    });
                }
            }
        }
        if !delivered.is_empty() {
            let expected = delivered.len() as u64;
            let marked = self.repo.mark_callbacks_delivered(delivered, done).await?;
            if marked < expected {
                // Their lease ran out mid-delivery: another claim will deliver them again.
                tracing::warn!(
                    lost = expected - marked,
                    "delivered events outlived their lease; they will be delivered again"
                );
            }
        }
        if !failed.is_empty() {
            self.repo.mark_callbacks_failed(failed, done).await?;
        }
        Ok(claimed)
    }

    /// Runs rounds until `shutdown` turns true: a round over the recent events right away when
    /// `wake` is notified, and one over the whole queue at start and then every poll interval.
    /// Store errors are logged and retried on the next round.
    pub async fn run(self, wake: Arc<Notify>, mut shutdown: watch::Receiver<bool>) {
        let mut whole_at = Instant::now();
        let mut scope = Scope::Whole;
        loop {
            if *shutdown.borrow() {
                return;
            }
            if scope == Scope::Whole {
                whole_at = Instant::now() + self.config.poll_interval;
            }
            match self.round(scope).await {
                // A full batch suggests more are due: go again without waiting, over the same
                // part of the queue (a backlog of old events drains at once, not one batch per
                // poll interval).
                Ok(n) if n >= self.config.batch as usize => continue,
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "callback dispatch round failed"),
            }
            tokio::select! {
                _ = wake.notified() => {
                    if !self.config.gather.is_zero() {
                        tokio::time::sleep(self.config.gather).await;
                    }
                    scope = if Instant::now() >= whole_at { Scope::Whole } else { Scope::Recent };
                }
                _ = tokio::time::sleep_until(whole_at) => scope = Scope::Whole,
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

/// The part of the queue a round claims from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scope {
    /// Every due event.
    Whole,
    /// Events that came due within the last `recent`.
    Recent,
}

/// A std duration as chrono's, saturating (a configured duration too long for chrono is
/// "never").
pub(crate) fn to_chrono(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::model::{
        CallbackEvent, CallbackKind, EntityId, EntityType, EventName, InstanceId, InstanceStatus,
        OutboxItem, UserId,
    };
    use crate::domain::ports::{MockCallbacks, MockClock, MockEventFanOut, MockWorkflowRepository};
    use chrono::{DateTime, TimeZone, Utc};

    fn item(id: i64, attempts: i32) -> OutboxItem {
        OutboxItem {
            id,
            attempts,
            event_id: format!("evt_{id}"),
            sequence: 1,
            event: CallbackEvent {
                kind: CallbackKind::OnApproved,
                instance_id: InstanceId::new(7).unwrap(),
                event: EventName::new("unit.price_update_requested").unwrap(),
                entity_type: EntityType::new("unit").unwrap(),
                entity_id: EntityId::new(3).unwrap(),
                status: InstanceStatus::Approved,
                step: None,
                decided_by: Some(UserId::new(2).unwrap()),
                comment: None,
                at: Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap(),
            },
        }
    }

    /// A round marks its outcomes in two writes, each naming the claims' leases.
    #[tokio::test]
    async fn a_round_marks_deliveries_and_failures_in_one_write_each_with_their_leases() {
        let now = Utc.with_ymd_and_hms(2026, 1, 1, 12, 0, 0).unwrap();
        let mut clock = MockClock::new();
        clock.expect_now().return_const(now);
        let mut repo = MockWorkflowRepository::new();
        repo.expect_claim_callbacks()
            .times(1)
            .returning(|_, _, _, _| {
                Box::pin(async { Ok(vec![item(1, 1), item(2, 3), item(3, 2)]) })
            });
        repo.expect_mark_callbacks_delivered()
            .withf(move |leases, at| {
                let mut leases = leases.clone();
                leases.sort();
                leases == vec![Lease { id: 1, attempts: 1 }, Lease { id: 3, attempts: 2 }]
                    && *at == now
            })
            .times(1)
            .returning(|leases, _| {
                let n = leases.len() as u64;
                Box::pin(async move { Ok(n) })
            });
        // Third attempt failed: 1s * 2^2 = 4s later.
        repo.expect_mark_callbacks_failed()
            .withf(move |failures, at| {
                failures
                    == &vec![FailedDelivery {
                        lease: Lease { id: 2, attempts: 3 },
                        error: "down".to_owned(),
                        retry_at: now + chrono::Duration::seconds(4),
                    }]
                    && *at == now
            })
            .times(1)
            .returning(|_, _| Box::pin(async { Ok(1) }));
        let mut callbacks = MockCallbacks::new();
        callbacks.expect_deliver().times(3).returning(|item| {
            let outcome = if item.id == 2 {
                Err("down".to_owned())
            } else {
                Ok(())
            };
            Box::pin(async move { outcome })
        });
        let dispatcher = Dispatcher::new(
            Arc::new(repo),
            Arc::new(callbacks),
            Arc::new(clock),
            DispatchConfig::default(),
        );
        assert_eq!(dispatcher.run_once().await.unwrap(), 3);
    }

    #[tokio::test]
    async fn an_empty_round_writes_nothing() {
        let mut clock = MockClock::new();
        clock
            .expect_now()
            .return_const(Utc.with_ymd_and_hms(2026, 1, 1, 12, 0, 0).unwrap());
        let mut repo = MockWorkflowRepository::new();
        repo.expect_claim_callbacks()
            .returning(|_, _, _, _| Box::pin(async { Ok(vec![]) }));
        repo.expect_mark_callbacks_delivered().never();
        repo.expect_mark_callbacks_failed().never();
        let dispatcher = Dispatcher::new(
            Arc::new(repo),
            Arc::new(MockCallbacks::new()),
            Arc::new(clock),
            DispatchConfig::default(),
        );
        assert_eq!(dispatcher.run_once().await.unwrap(), 0);
    }

    /// A failed fan-out fails its whole round: nothing goes to the adapters, every event is
    /// retried.
    #[tokio::test]
    async fn a_failed_fan_out_fails_the_round_before_any_adapter() {
        let now = Utc.with_ymd_and_hms(2026, 1, 1, 12, 0, 0).unwrap();
        let mut clock = MockClock::new();
        clock.expect_now().return_const(now);
        let mut repo = MockWorkflowRepository::new();
        repo.expect_claim_callbacks()
            .returning(|_, _, _, _| Box::pin(async { Ok(vec![item(1, 1), item(2, 1)]) }));
        repo.expect_mark_callbacks_delivered().never();
        repo.expect_mark_callbacks_failed()
            .withf(|failures, _| {
                failures.len() == 2 && failures.iter().all(|f| f.error == "store down")
            })
            .times(1)
            .returning(|_, _| Box::pin(async { Ok(2) }));
        let mut callbacks = MockCallbacks::new();
        callbacks.expect_deliver().never();
        let mut fan_out = MockEventFanOut::new();
        fan_out
            .expect_fan_out()
            .withf(|items| items.len() == 2)
            .times(1)
            .returning(|_| Box::pin(async { Err("store down".to_owned()) }));
        let dispatcher = Dispatcher::new(
            Arc::new(repo),
            Arc::new(callbacks),
            Arc::new(clock),
            DispatchConfig::default(),
        )
        .with_fan_out(Arc::new(fan_out));
        assert_eq!(dispatcher.run_once().await.unwrap(), 2);
    }

    /// The `due_since` of each claim, in order.
    type Asked = Arc<std::sync::Mutex<Vec<Option<DateTime<Utc>>>>>;

    /// A dispatcher whose claims record the `due_since` they were asked for, answering from
    /// `answers` in turn (then nothing), every event delivered.
    fn recording(
        answers: Vec<Vec<OutboxItem>>,
        config: DispatchConfig,
    ) -> (
        Dispatcher<MockWorkflowRepository, MockCallbacks, MockClock>,
        Asked,
    ) {
        let mut clock = MockClock::new();
        clock.expect_now().return_const(now());
        let asked = Arc::new(std::sync::Mutex::new(Vec::new()));
        let seen = Arc::clone(&asked);
        let mut answers = answers.into_iter();
        let mut repo = MockWorkflowRepository::new();
        repo.expect_claim_callbacks()
            .returning(move |_, _, _, due_since| {
                seen.lock().unwrap().push(due_since);
                let items = answers.next().unwrap_or_default();
                Box::pin(async move { Ok(items) })
            });
        repo.expect_mark_callbacks_delivered()
            .returning(|leases, _| {
                let n = leases.len() as u64;
                Box::pin(async move { Ok(n) })
            });
        let mut callbacks = MockCallbacks::new();
        callbacks
            .expect_deliver()
            .returning(|_| Box::pin(async { Ok(()) }));
        let dispatcher =
            Dispatcher::new(Arc::new(repo), Arc::new(callbacks), Arc::new(clock), config);
        (dispatcher, asked)
    }

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, 1, 12, 0, 0).unwrap()
    }

    /// The first round and one every poll interval claim from the whole queue; a round a change
    /// woke claims only what came due within `recent`.
    #[tokio::test(start_paused = true)]
    async fn woken_rounds_claim_recent_events_and_every_poll_interval_the_whole_queue() {
        let config = DispatchConfig {
            poll_interval: Duration::from_secs(1),
            recent: Duration::from_secs(10),
            ..DispatchConfig::default()
        };
        let (dispatcher, asked) = recording(Vec::new(), config);
        let wake = Arc::new(Notify::new());
        let (stop, stopped) = watch::channel(false);
        let running = tokio::spawn(dispatcher.run(Arc::clone(&wake), stopped));
        tokio::time::sleep(Duration::from_millis(10)).await;
        for _ in 0..2 {
            wake.notify_one();
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        // Past the poll interval since the first round, with no wake-up.
        tokio::time::sleep(Duration::from_secs(1)).await;
        stop.send(true).unwrap();
        running.await.unwrap();
        let recent = Some(now() - chrono::Duration::seconds(10));
        assert_eq!(*asked.lock().unwrap(), vec![None, recent, recent, None]);
    }

    /// A full batch from the whole queue is followed at once by another round over the whole
    /// queue: a backlog of old events drains without waiting a poll interval per batch.
    #[tokio::test(start_paused = true)]
    async fn a_full_batch_goes_again_over_the_same_part_of_the_queue() {
        let config = DispatchConfig {
            batch: 2,
            ..DispatchConfig::default()
        };
        let (dispatcher, asked) = recording(vec![vec![item(1, 1), item(2, 1)]], config);
        let wake = Arc::new(Notify::new());
        let (stop, stopped) = watch::channel(false);
        let running = tokio::spawn(dispatcher.run(wake, stopped));
        tokio::time::sleep(Duration::from_millis(10)).await;
        stop.send(true).unwrap();
        running.await.unwrap();
        assert_eq!(*asked.lock().unwrap(), vec![None, None]);
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
