//! The callback dispatcher (domain core): delivers events from the outbox after the change that
//! wrote them has committed, at least once, with exponential backoff on failure.
//!
//! It drives three ports (the repository's outbox half, `EventFanOut` for each round as a whole,
//! and beside it `Callbacks` for each event) and owns no state of its own, so any number of
//! dispatchers, in any number of processes, can run at once: the repository's claim lease keeps
//! them from delivering one event concurrently.

use std::sync::Arc;
use std::time::Duration;

use futures_util::stream::{self, FuturesUnordered, StreamExt};
use tokio::sync::{Notify, watch};
use tokio::time::Instant;

use super::error::WorkflowError;
use super::model::{FailedDelivery, Lease};
use super::ports::{Callbacks, Clock, EventFanOut, NoFanOut, WorkflowRepository};

/// How long a round runs before the next may start beside it. Rounds overlapping all the time
/// would each carry fewer events, for the same statements each.
pub const OVERLAP_AFTER: Duration = Duration::from_millis(250);

/// An event's try in a round: its claim, its attempts counting this one, and how it went.
type Tried = (Lease, i32, Result<(), String>);

/// Rounds in flight at once: a round waits for its events' webhook first tries, which a
/// hanging receiver holds up to the webhook time-out, and the rounds after it go on meanwhile.
pub const ROUNDS_IN_FLIGHT: usize = 16;

/// Tuning of the dispatcher.
#[derive(Debug, Clone)]
pub struct DispatchConfig {
    /// Events claimed per round.
    pub batch: u32,
    /// Events of a round delivered at once: all of a full round by default, so that every
    /// try starts when the claim does and a broker that times out costs the round one time-out,
    /// well within its lease, not one per few events.
    pub concurrency: usize,
    /// How long a claim keeps other dispatchers off an event.
    pub lease: Duration,
    /// Delay before the first retry; doubles with each failure.
    pub first_retry: Duration,
    /// Longest delay between retries.
    pub max_retry: Duration,
    /// How often to look for due events when nothing wakes the dispatcher.
    pub poll_interval: Duration,
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
            concurrency: 100,
            lease: Duration::from_secs(60),
            first_retry: Duration::from_secs(1),
            max_retry: Duration::from_secs(300),
            poll_interval: Duration::from_secs(1),
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
    /// One round: claims due events, hands them to the fan-out (the webhooks' first tries)
    /// and, at the same time, tries each once with the `Callbacks` (up to `concurrency` at a
    /// time), then records the outcomes in two writes (the delivered ones, the failed ones),
    /// so that the store sees a few statements per round rather than one per event. Returns
    /// how many events were claimed.
    pub async fn run_once(&self) -> Result<usize, WorkflowError> {
        let now = self.clock.now();
        let lease_until = now + to_chrono(self.config.lease);
        let items = self
            .repo
            .claim_callbacks(now, lease_until, self.config.batch)
            .await?;
        let claimed = items.len();
        if claimed == 0 {
            return Ok(0);
        }
        // Neither waits for the other: a receiver that hangs holds back no NATS publish, and a
        // NATS outage no webhook.
        let tries: Vec<_> = items
            .iter()
            .map(|item| async move {
                let outcome = self.callbacks.deliver(item).await;
                (item.lease(), item.attempts, outcome)
            })
            .collect();
        let (fanned_out, delivered): (Result<(), String>, Vec<Tried>) = tokio::join!(
            self.fan_out.fan_out(&items, lease_until),
            stream::iter(tries)
                .buffer_unordered(self.config.concurrency.max(1))
                .collect()
        );
        // If the fan-out failed, so does every event of the round: all come round again (the
        // adapters that took them take them again; each drops what it already has by id).
        let outcomes: Vec<Tried> = match fanned_out {
            Err(reason) => items
                .iter()
                .map(|item| (item.lease(), item.attempts, Err(reason.clone())))
                .collect(),
            Ok(()) => delivered,
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

    /// Runs rounds until `shutdown` turns true: a round when `wake` is notified (after the
    /// gather), right after a full round, else every poll interval. Rounds follow each other,
    /// each taking what committed during the one before; but once the last round has run for
    /// [`OVERLAP_AFTER`] (waiting on a hanging webhook receiver), the next starts beside it, up
    /// to [`ROUNDS_IN_FLIGHT`] at once, each on its own claimed events, so such a round holds
    /// back none of the events after it. Store errors are logged and retried on a later round.
    /// On shutdown, the rounds in flight finish and are recorded.
    pub async fn run(self, wake: Arc<Notify>, mut shutdown: watch::Receiver<bool>) {
        let mut in_flight = FuturesUnordered::new();
        let mut next_round = Instant::now();
        let mut last_start = Instant::now();
        loop {
            if *shutdown.borrow() {
                break;
            }
            let room = in_flight.len() < ROUNDS_IN_FLIGHT;
            let start_at = if in_flight.is_empty() {
                next_round
            } else {
                next_round.max(last_start + OVERLAP_AFTER)
            };
            if room && Instant::now() >= start_at {
                in_flight.push(self.run_once());
                last_start = Instant::now();
                next_round = last_start + self.config.poll_interval;
                continue;
            }
            tokio::select! {
                Some(round) = in_flight.next(), if !in_flight.is_empty() => match round {
                    // A full batch suggests more are due: go again without waiting.
                    Ok(n) if n >= self.config.batch as usize => next_round = Instant::now(),
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "callback dispatch round failed"),
                },
                _ = wake.notified() => {
                    next_round = next_round.min(Instant::now() + self.config.gather);
                }
                _ = tokio::time::sleep_until(start_at), if room => {}
                changed = shutdown.changed() => {
                    // The sender is gone: nobody can ask for a stop any more, so stop now.
                    if changed.is_err() {
                        break;
                    }
                }
            }
        }
        while in_flight.next().await.is_some() {}
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
    use chrono::{TimeZone, Utc};

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
            .returning(|_, _, _| Box::pin(async { Ok(vec![item(1, 1), item(2, 3), item(3, 2)]) }));
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
            .returning(|_, _, _| Box::pin(async { Ok(vec![]) }));
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

    /// A failed fan-out fails its whole round, whatever the adapters beside it did: every
    /// event comes round again. The fan-out is handed the round's claim, to the lease's end.
    #[tokio::test]
    async fn a_failed_fan_out_fails_the_whole_round() {
        let now = Utc.with_ymd_and_hms(2026, 1, 1, 12, 0, 0).unwrap();
        let mut clock = MockClock::new();
        clock.expect_now().return_const(now);
        let mut repo = MockWorkflowRepository::new();
        repo.expect_claim_callbacks()
            .returning(|_, _, _| Box::pin(async { Ok(vec![item(1, 1), item(2, 1)]) }));
        repo.expect_mark_callbacks_delivered().never();
        repo.expect_mark_callbacks_failed()
            .withf(|failures, _| {
                failures.len() == 2 && failures.iter().all(|f| f.error == "store down")
            })
            .times(1)
            .returning(|_, _| Box::pin(async { Ok(2) }));
        let mut callbacks = MockCallbacks::new();
        callbacks
            .expect_deliver()
            .returning(|_| Box::pin(async { Ok(()) }));
        let mut fan_out = MockEventFanOut::new();
        fan_out
            .expect_fan_out()
            .withf(move |items, held_until| {
                items.len() == 2 && *held_until == now + chrono::Duration::seconds(60)
            })
            .times(1)
            .returning(|_, _| Box::pin(async { Err("store down".to_owned()) }));
        let dispatcher = Dispatcher::new(
            Arc::new(repo),
            Arc::new(callbacks),
            Arc::new(clock),
            DispatchConfig::default(),
        )
        .with_fan_out(Arc::new(fan_out));
        assert_eq!(dispatcher.run_once().await.unwrap(), 2);
    }

    /// The fan-out and the adapters run at once: a fan-out that waits (on a hanging webhook
    /// receiver) until an adapter has had the event still finishes.
    #[tokio::test]
    async fn the_fan_out_and_the_adapters_do_not_wait_for_each_other() {
        struct WaitsForTheAdapter(Arc<Notify>);
        impl EventFanOut for WaitsForTheAdapter {
            async fn fan_out(
                &self,
                _: &[OutboxItem],
                _: chrono::DateTime<Utc>,
            ) -> Result<(), String> {
                self.0.notified().await;
                Ok(())
            }
        }
        struct TellsTheFanOut(Arc<Notify>);
        impl Callbacks for TellsTheFanOut {
            async fn deliver(&self, _: &OutboxItem) -> Result<(), String> {
                self.0.notify_one();
                Ok(())
            }
        }
        let mut clock = MockClock::new();
        clock
            .expect_now()
            .return_const(Utc.with_ymd_and_hms(2026, 1, 1, 12, 0, 0).unwrap());
        let mut repo = MockWorkflowRepository::new();
        repo.expect_claim_callbacks()
            .returning(|_, _, _| Box::pin(async { Ok(vec![item(1, 1)]) }));
        repo.expect_mark_callbacks_delivered()
            .times(1)
            .returning(|leases, _| {
                let n = leases.len() as u64;
                Box::pin(async move { Ok(n) })
            });
        let signal = Arc::new(Notify::new());
        let dispatcher = Dispatcher::new(
            Arc::new(repo),
            Arc::new(TellsTheFanOut(Arc::clone(&signal))),
            Arc::new(clock),
            DispatchConfig::default(),
        )
        .with_fan_out(Arc::new(WaitsForTheAdapter(signal)));
        let round = tokio::time::timeout(Duration::from_secs(5), dispatcher.run_once()).await;
        assert_eq!(round.expect("the round waited on itself").unwrap(), 1);
    }

    /// Rounds run at once: while one waits on its fan-out, a wake-up starts another (once the
    /// first has run for `OVERLAP_AFTER`, not before), which finishes first; on shutdown the
    /// waiting one finishes and is recorded.
    #[tokio::test(start_paused = true)]
    async fn a_round_in_flight_holds_back_no_round_after_it() {
        struct FirstRoundHangs {
            rounds: std::sync::atomic::AtomicUsize,
            release: Arc<Notify>,
        }
        impl EventFanOut for FirstRoundHangs {
            async fn fan_out(
                &self,
                _: &[OutboxItem],
                _: chrono::DateTime<Utc>,
            ) -> Result<(), String> {
                let round = self
                    .rounds
                    .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                if round == 0 {
                    self.release.notified().await;
                }
                Ok(())
            }
        }
        let mut clock = MockClock::new();
        clock
            .expect_now()
            .return_const(Utc.with_ymd_and_hms(2026, 1, 1, 12, 0, 0).unwrap());
        let mut repo = MockWorkflowRepository::new();
        let mut claims = 0;
        repo.expect_claim_callbacks().returning(move |_, _, _| {
            claims += 1;
            let id = claims;
            Box::pin(async move { Ok(if id <= 2 { vec![item(id, 1)] } else { vec![] }) })
        });
        let (marked_tx, mut marked) = tokio::sync::mpsc::unbounded_channel();
        repo.expect_mark_callbacks_delivered()
            .returning(move |leases, _| {
                for lease in &leases {
                    marked_tx.send(lease.id).unwrap();
                }
                let n = leases.len() as u64;
                Box::pin(async move { Ok(n) })
            });
        let mut callbacks = MockCallbacks::new();
        callbacks
            .expect_deliver()
            .returning(|_| Box::pin(async { Ok(()) }));
        let release = Arc::new(Notify::new());
        let dispatcher = Dispatcher::new(
            Arc::new(repo),
            Arc::new(callbacks),
            Arc::new(clock),
            DispatchConfig {
                poll_interval: Duration::from_secs(3600),
                gather: Duration::ZERO,
                ..DispatchConfig::default()
            },
        )
        .with_fan_out(Arc::new(FirstRoundHangs {
            rounds: std::sync::atomic::AtomicUsize::new(0),
            release: Arc::clone(&release),
        }));
        let wake = Arc::new(Notify::new());
        let (stop, stopped) = watch::channel(false);
        let started = Instant::now();
        let running = tokio::spawn(dispatcher.run(Arc::clone(&wake), stopped));
        wake.notify_one();
        let second = tokio::time::timeout(Duration::from_secs(5), marked.recv()).await;
        assert_eq!(second.expect("the second round waited"), Some(2));
        assert!(
            started.elapsed() >= OVERLAP_AFTER,
            "overlapped after {:?}",
            started.elapsed()
        );
        stop.send(true).unwrap();
        release.notify_one();
        tokio::time::timeout(Duration::from_secs(5), running)
            .await
            .expect("the loop stopped")
            .unwrap();
        assert_eq!(
            marked.recv().await,
            Some(1),
            "the round in flight was recorded"
        );
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
