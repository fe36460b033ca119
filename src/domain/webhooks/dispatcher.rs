//! The webhook dispatcher: sends due deliveries, at least once, retrying on the configured
//! schedule with jitter, then giving up (`dead`).
//!
//! It drives three ports (the store's webhook half, the sender, the clock) and owns no state,
//! so any number of dispatchers in any number of processes can run at once: the store's claim
//! (`FOR UPDATE SKIP LOCKED` and a lease) keeps two of them from sending one delivery at once,
//! and every outcome is recorded fenced by the claim's lease, so a dispatcher whose lease ran
//! out never overwrites what a later claim recorded.
//!
//! A delivery's first try needs no claim: the fan-out creates it already leased to its own
//! process and hands it over here (a [`HandOff`]). Anything the hand-off misses (a full queue,
//! a process that stopped, a try that waited too long) stays due and is claimed by some
//! dispatcher when its lease ends.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures_util::future::{self, Either};
use futures_util::stream::{FuturesUnordered, StreamExt};
use tokio::sync::{Notify, mpsc, watch};
use tokio::time::Instant;

use super::model::{ClaimedDelivery, DeliveryMark, MarkOutcome, RetrySchedule, SendOutcome};
use super::ports::{WebhookSender, WebhookStore};
use crate::domain::WorkflowError;
use crate::domain::dispatcher::to_chrono;
use crate::domain::model::Lease;
use crate::domain::ports::Clock;

/// Handed batches waiting for the dispatcher; beyond this the fan-out hands none (they are
/// claimed when their lease ends).
const HAND_OFF_QUEUE: usize = 256;

/// Rounds in flight at once, counting the claim round (of which there is at most one, started
/// even when this many are in flight): a hanging receiver holds its round up to the sender's
/// time-out without holding the others back, and no more than this many wait on such
/// receivers.
const ROUNDS_IN_FLIGHT: usize = 32;

/// Deliveries the fan-out created already claimed, on their way to this process's dispatcher.
#[derive(Debug)]
pub struct HandedDeliveries {
    pub deliveries: Vec<ClaimedDelivery>,
    /// Their lease's end, the same for all.
    pub leased_until: DateTime<Utc>,
}

/// The fan-out's end of the hand-off.
#[derive(Debug, Clone)]
pub struct HandOff(mpsc::Sender<HandedDeliveries>);

/// The dispatcher's end of the hand-off.
#[derive(Debug)]
pub struct HandedQueue(mpsc::Receiver<HandedDeliveries>);

/// A hand-off and its queue.
pub fn hand_off() -> (HandOff, HandedQueue) {
    let (tx, rx) = mpsc::channel(HAND_OFF_QUEUE);
    (HandOff(tx), HandedQueue(rx))
}

impl HandedQueue {
    /// The next batch queued, if one is waiting now.
    pub fn try_next(&mut self) -> Option<HandedDeliveries> {
        self.0.try_recv().ok()
    }
}

impl HandOff {
    /// Queues `handed` for the dispatcher; `false` if the queue is full or nobody takes from
    /// it, when the deliveries wait for their lease to end and a claim.
    pub fn hand(&self, handed: HandedDeliveries) -> bool {
        self.0.try_send(handed).is_ok()
    }
}

/// Tuning of the webhook dispatcher.
#[derive(Debug, Clone)]
pub struct WebhookDispatchConfig {
    /// Deliveries claimed per round, all sent at once: each try then starts when its lease
    /// does, so the lease covers it. (Sent a few at a time, the last of a round to a hanging
    /// receiver would start after their lease had run out, when another dispatcher may claim
    /// and send them too.)
    pub batch: u32,
    /// How long a claim keeps other dispatchers off a delivery: longer than the sender's
    /// time-out, so that a try ends before its lease does.
    pub lease: Duration,
    /// The delays after each failed try.
    pub schedule: RetrySchedule,
    /// How often to look for due deliveries when nothing wakes the dispatcher.
    pub poll_interval: Duration,
    /// The longest a try may take (the sender's time-out): a handed delivery is tried only
    /// while its lease outlasts a whole try, so one that waited in the queue too long is left
    /// to be claimed when its lease ends rather than sent when another dispatcher may send it.
    pub try_timeout: Duration,
}

impl Default for WebhookDispatchConfig {
    fn default() -> Self {
        Self {
            batch: 32,
            lease: Duration::from_secs(60),
            schedule: RetrySchedule::default(),
            poll_interval: Duration::from_secs(1),
            try_timeout: Duration::from_secs(10),
        }
    }
}

/// What finished in the dispatcher's loop.
enum Finished {
    Claimed(Result<usize, WorkflowError>),
    Handed(Result<usize, WorkflowError>),
}

/// Sends due webhook deliveries through a [`WebhookSender`].
pub struct WebhookDispatcher<W, S, C> {
    store: Arc<W>,
    sender: Arc<S>,
    clock: Arc<C>,
    config: WebhookDispatchConfig,
}

impl<W, S, C> WebhookDispatcher<W, S, C>
where
    W: WebhookStore,
    S: WebhookSender,
    C: Clock,
{
    /// A dispatcher over these adapters.
    pub fn new(
        store: Arc<W>,
        sender: Arc<S>,
        clock: Arc<C>,
        config: WebhookDispatchConfig,
    ) -> Self {
        Self {
            store,
            sender,
            clock,
            config,
        }
    }

    /// One round: claims due deliveries, tries each once (all at once) and records the
    /// outcomes in one write. Returns how many were claimed.
    pub async fn run_once(&self) -> Result<usize, WorkflowError> {
        let now = self.clock.now();
        let lease_until = now + to_chrono(self.config.lease);
        let claimed = self
            .store
            .claim_deliveries(now, lease_until, self.config.batch)
            .await?;
        self.send_and_record(claimed).await
    }

    /// Tries deliveries the fan-out created already claimed, as a round does, if their lease
    /// still outlasts a whole try; else leaves them to be claimed when it ends. Returns how
    /// many were tried.
    pub async fn send_handed(&self, handed: HandedDeliveries) -> Result<usize, WorkflowError> {
        let left = handed.leased_until - self.clock.now();
        if left <= to_chrono(self.config.try_timeout) {
            tracing::info!(
                deliveries = handed.deliveries.len(),
                "handed webhook deliveries waited too long; they will be claimed when their lease ends"
            );
            return Ok(0);
        }
        self.send_and_record(handed.deliveries).await
    }

    /// Tries each claimed delivery once (all at once, so each starts when its lease does) and
    /// records the outcomes in one write.
    async fn send_and_record(&self, claimed: Vec<ClaimedDelivery>) -> Result<usize, WorkflowError> {
        let count = claimed.len();
        if count == 0 {
            return Ok(0);
        }
        let outcomes: Vec<(Lease, SendOutcome)> =
            future::join_all(claimed.into_iter().map(|delivery| async move {
                // Each try is stamped with the time it is sent.
                let outcome = self.sender.send(&delivery, self.clock.now()).await;
                (delivery.lease, outcome)
            }))
            .await;
        let done = self.clock.now();
        let marks: Vec<DeliveryMark> = outcomes
            .into_iter()
            .map(|(lease, outcome)| DeliveryMark {
                lease,
                outcome: self.record(lease, outcome, done),
            })
            .collect();
        let expected = marks.len() as u64;
        let marked = self.store.mark_deliveries(marks, done).await?;
        if marked < expected {
            // Their lease ran out mid-try: a later claim owns them now and will send them again.
            tracing::warn!(
                lost = expected - marked,
                "webhook deliveries outlived their lease; they will be sent again"
            );
        }
        Ok(count)
    }

    /// How a try's outcome is recorded: a failure is retried after the schedule's next delay
    /// (with jitter), or is dead when the schedule has run out.
    fn record(&self, lease: Lease, outcome: SendOutcome, done: DateTime<Utc>) -> MarkOutcome {
        match outcome {
            SendOutcome::Delivered { status } => MarkOutcome::Delivered { status },
            SendOutcome::Failed { status, error } => {
                let retry_at = self
                    .config
                    .schedule
                    .delay_after(lease.attempts)
                    .map(|delay| done + to_chrono(with_jitter(delay, lease)));
                match retry_at {
                    Some(at) => {
                        tracing::warn!(delivery_id = lease.id, attempts = lease.attempts, %error, retry_at = %at, "webhook delivery failed; will retry")
                    }
                    None => {
                        tracing::warn!(delivery_id = lease.id, attempts = lease.attempts, %error, "webhook delivery failed on its last try; it is dead")
                    }
                }
                MarkOutcome::Failed {
                    status,
                    error,
                    retry_at,
                }
            }
        }
    }

    /// Runs until `shutdown` turns true: sends what is handed over as it arrives, and claims a
    /// round right away when `wake` is notified (a retry asked for), else every poll interval,
    /// several rounds in flight at once. Store errors are logged and retried on the next round.
    /// On shutdown, the tries in flight finish and are recorded.
    pub async fn run(
        self,
        handed: HandedQueue,
        wake: Arc<Notify>,
        mut shutdown: watch::Receiver<bool>,
    ) {
        let HandedQueue(mut handed) = handed;
        let mut handed_open = true;
        let mut in_flight = FuturesUnordered::new();
        let mut claiming = false;
        let mut claim_at = Instant::now();
        // Woken while a claim round was in flight: claim again when it ends.
        let mut woken = false;
        loop {
            if *shutdown.borrow() {
                break;
            }
            if !claiming && Instant::now() >= claim_at {
                claiming = true;
                in_flight.push(Either::Left(async {
                    Finished::Claimed(self.run_once().await)
                }));
            }
            let room = in_flight.len() < ROUNDS_IN_FLIGHT;
            tokio::select! {
                Some(finished) = in_flight.next(), if !in_flight.is_empty() => match finished {
                    Finished::Claimed(round) => {
                        claiming = false;
                        // A full batch suggests more are due: go again without waiting.
                        let more = match round {
                            Ok(n) => n >= self.config.batch as usize,
                            Err(e) => {
                                tracing::warn!(error = %e, "webhook dispatch round failed");
                                false
                            }
                        };
                        let again = std::mem::take(&mut woken) || more;
                        claim_at = Instant::now();
                        if !again {
                            claim_at += self.config.poll_interval;
                        }
                    }
                    Finished::Handed(Ok(_)) => {}
                    Finished::Handed(Err(e)) => {
                        // Their lease ends unmarked, and a claim sends them again.
                        tracing::warn!(error = %e, "recording handed webhook deliveries failed");
                    }
                },
                next = handed.recv(), if handed_open && room => match next {
                    Some(batch) => in_flight.push(Either::Right(async {
                        Finished::Handed(self.send_handed(batch).await)
                    })),
                    None => handed_open = false,
                },
                _ = wake.notified() => {
                    woken = claiming;
                    claim_at = Instant::now();
                }
                _ = tokio::time::sleep_until(claim_at), if !claiming => {}
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
}

/// `delay` stretched by up to 10%, by an amount drawn from the delivery and its attempt: the
/// deliveries of one failing receiver spread out instead of retrying in one burst, and the
/// same try always waits the same (which keeps the core free of a random source).
fn with_jitter(delay: Duration, lease: Lease) -> Duration {
    let seed = (lease.id as u64)
        .wrapping_mul(0x9E37_79B9_7F4A_7C15)
        .wrapping_add(lease.attempts as u64)
        .wrapping_mul(0xBF58_476D_1CE4_E5B9);
    let per_mille = (seed >> 33) % 101;
    delay + delay.mul_f64(per_mille as f64 / 1000.0)
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;
    use crate::domain::ports::MockClock;
    use crate::domain::webhooks::model::{ClaimedDelivery, WebhookSecret, WebhookUrl};
    use crate::domain::webhooks::ports::{MockWebhookSender, MockWebhookStore};

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, 1, 12, 0, 0).unwrap()
    }

    fn claimed(id: i64, attempts: i32) -> ClaimedDelivery {
        ClaimedDelivery {
            lease: Lease { id, attempts },
            url: WebhookUrl::parse("https://hooks.example.com/in").unwrap(),
            secret: WebhookSecret::from_stored("whsec_AAAA".to_owned()),
            event_id: format!("evt_{id}"),
            body: "{}".to_owned(),
        }
    }

    fn config() -> WebhookDispatchConfig {
        WebhookDispatchConfig {
            schedule: RetrySchedule::parse("1s,10s").unwrap(),
            ..WebhookDispatchConfig::default()
        }
    }

    fn clock() -> MockClock {
        let mut clock = MockClock::new();
        clock.expect_now().return_const(now());
        clock
    }

    fn dispatcher<S: WebhookSender>(
        store: MockWebhookStore,
        sender: S,
    ) -> WebhookDispatcher<MockWebhookStore, S, MockClock> {
        WebhookDispatcher::new(
            Arc::new(store),
            Arc::new(sender),
            Arc::new(clock()),
            config(),
        )
    }

    /// 2xx is delivered; a failure with schedule left is retried after its delay (with at most
    /// 10% jitter); a failure past the schedule is dead; every mark names its claim's lease.
    #[tokio::test]
    async fn a_round_records_each_outcome_under_its_lease() {
        let mut store = MockWebhookStore::new();
        store
            .expect_claim_deliveries()
            .times(1)
            .returning(|at, until, _| {
                assert_eq!(until - at, chrono::Duration::seconds(60));
                Box::pin(async { Ok(vec![claimed(1, 1), claimed(2, 2), claimed(3, 3)]) })
            });
        store
            .expect_mark_deliveries()
            .times(1)
            .returning(|mut marks, at| {
                assert_eq!(at, now());
                marks.sort_by_key(|m| m.lease.id);
                assert_eq!(marks[0].lease, Lease { id: 1, attempts: 1 });
                assert_eq!(marks[0].outcome, MarkOutcome::Delivered { status: 204 });
                assert_eq!(marks[1].lease, Lease { id: 2, attempts: 2 });
                let MarkOutcome::Failed {
                    status,
                    error,
                    retry_at: Some(retry_at),
                } = &marks[1].outcome
                else {
                    panic!("not retried: {:?}", marks[1].outcome);
                };
                assert_eq!((*status, error.as_str()), (Some(500), "HTTP 500"));
                let wait = *retry_at - now();
                assert!(
                    wait >= chrono::Duration::seconds(10) && wait <= chrono::Duration::seconds(11),
                    "{wait}"
                );
                assert_eq!(
                    marks[2].outcome,
                    MarkOutcome::Failed {
                        status: None,
                        error: "timed out".to_owned(),
                        retry_at: None
                    }
                );
                Box::pin(async { Ok(3) })
            });
        let mut sender = MockWebhookSender::new();
        sender.expect_send().times(3).returning(|delivery, at| {
            assert_eq!(at, now());
            let outcome = match delivery.lease.id {
                1 => SendOutcome::Delivered { status: 204 },
                2 => SendOutcome::Failed {
                    status: Some(500),
                    error: "HTTP 500".to_owned(),
                },
                _ => SendOutcome::Failed {
                    status: None,
                    error: "timed out".to_owned(),
                },
            };
            Box::pin(async move { outcome })
        });
        let dispatcher = dispatcher(store, sender);
        assert_eq!(dispatcher.run_once().await.unwrap(), 3);
    }

    /// A store that records fewer marks than were sent (leases ran out) is no error: the round
    /// still counts its claims.
    #[tokio::test]
    async fn marks_lost_to_an_expired_lease_are_not_an_error() {
        let mut store = MockWebhookStore::new();
        store
            .expect_claim_deliveries()
            .returning(|_, _, _| Box::pin(async { Ok(vec![claimed(9, 4)]) }));
        store
            .expect_mark_deliveries()
            .times(1)
            .returning(|_, _| Box::pin(async { Ok(0) }));
        let mut sender = MockWebhookSender::new();
        sender
            .expect_send()
            .returning(|_, _| Box::pin(async { SendOutcome::Delivered { status: 200 } }));
        let dispatcher = dispatcher(store, sender);
        assert_eq!(dispatcher.run_once().await.unwrap(), 1);
    }

    /// Every delivery of a round is in flight at once, so that none starts late in its lease: a
    /// sender whose tries all wait for each other finishes only if none was held back.
    #[tokio::test]
    async fn a_round_sends_all_its_deliveries_at_once() {
        struct WaitingForAll(tokio::sync::Barrier);
        impl WebhookSender for WaitingForAll {
            async fn send(&self, _: &ClaimedDelivery, _: DateTime<Utc>) -> SendOutcome {
                self.0.wait().await;
                SendOutcome::Delivered { status: 204 }
            }
        }
        let batch = config().batch;
        let mut store = MockWebhookStore::new();
        store
            .expect_claim_deliveries()
            .returning(move |_, _, limit| {
                assert_eq!(limit, batch);
                let all = (1..=i64::from(limit)).map(|id| claimed(id, 1)).collect();
                Box::pin(async move { Ok(all) })
            });
        store
            .expect_mark_deliveries()
            .returning(|marks, _| Box::pin(async move { Ok(marks.len() as u64) }));
        let dispatcher = dispatcher(
            store,
            WaitingForAll(tokio::sync::Barrier::new(batch as usize)),
        );
        let round = tokio::time::timeout(Duration::from_secs(5), dispatcher.run_once()).await;
        assert_eq!(
            round.expect("tries were held back").unwrap(),
            batch as usize
        );
    }

    #[tokio::test]
    async fn an_empty_round_sends_and_writes_nothing() {
        let mut store = MockWebhookStore::new();
        store
            .expect_claim_deliveries()
            .returning(|_, _, _| Box::pin(async { Ok(vec![]) }));
        store.expect_mark_deliveries().never();
        let mut sender = MockWebhookSender::new();
        sender.expect_send().never();
        let dispatcher = dispatcher(store, sender);
        assert_eq!(dispatcher.run_once().await.unwrap(), 0);
    }

    fn handed(ids: &[i64], lease_left: i64) -> HandedDeliveries {
        HandedDeliveries {
            deliveries: ids.iter().map(|id| claimed(*id, 1)).collect(),
            leased_until: now() + chrono::Duration::seconds(lease_left),
        }
    }

    /// A handed delivery is tried at once, with no claim, and recorded under the lease the
    /// fan-out created it with.
    #[tokio::test]
    async fn handed_deliveries_are_sent_and_recorded_under_their_first_lease() {
        let mut store = MockWebhookStore::new();
        store.expect_claim_deliveries().never();
        store
            .expect_mark_deliveries()
            .times(1)
            .returning(|marks, _| {
                assert_eq!(marks.len(), 2);
                assert!(marks.iter().all(|m| m.lease.attempts == 1
                    && m.outcome == MarkOutcome::Delivered { status: 200 }));
                Box::pin(async { Ok(2) })
            });
        let mut sender = MockWebhookSender::new();
        sender
            .expect_send()
            .times(2)
            .returning(|_, _| Box::pin(async { SendOutcome::Delivered { status: 200 } }));
        let dispatcher = dispatcher(store, sender);
        assert_eq!(
            dispatcher.send_handed(handed(&[1, 2], 15)).await.unwrap(),
            2
        );
    }

    /// One whose lease no longer outlasts a whole try is not tried: it could still be in flight
    /// when its lease ends and another dispatcher claims it.
    #[tokio::test]
    async fn handed_deliveries_that_waited_too_long_are_left_for_a_claim() {
        let mut store = MockWebhookStore::new();
        store.expect_mark_deliveries().never();
        let mut sender = MockWebhookSender::new();
        sender.expect_send().never();
        let dispatcher = dispatcher(store, sender);
        let try_timeout = config().try_timeout.as_secs() as i64;
        assert_eq!(
            dispatcher
                .send_handed(handed(&[1], try_timeout))
                .await
                .unwrap(),
            0
        );
    }

    /// The loop tries a handed delivery while a claimed round still waits on a hanging
    /// receiver, and on shutdown lets that round finish and be recorded.
    #[tokio::test]
    async fn handed_deliveries_do_not_wait_for_a_round_in_flight() {
        let release = Arc::new(Notify::new());
        let (marked_tx, mut marked) = mpsc::unbounded_channel();
        let mut store = MockWebhookStore::new();
        let mut claims = 0;
        store.expect_claim_deliveries().returning(move |_, _, _| {
            claims += 1;
            let claimed = if claims == 1 {
                vec![claimed(1, 2)]
            } else {
                Vec::new()
            };
            Box::pin(async move { Ok(claimed) })
        });
        store.expect_mark_deliveries().returning(move |marks, _| {
            for mark in &marks {
                marked_tx.send(mark.lease.id).unwrap();
            }
            Box::pin(async move { Ok(marks.len() as u64) })
        });
        let mut sender = MockWebhookSender::new();
        let hanging = Arc::clone(&release);
        sender.expect_send().returning(move |delivery, _| {
            let hanging = Arc::clone(&hanging);
            let id = delivery.lease.id;
            Box::pin(async move {
                if id == 1 {
                    hanging.notified().await;
                }
                SendOutcome::Delivered { status: 200 }
            })
        });
        let dispatcher = dispatcher(store, sender);
        let (hand_off, queue) = hand_off();
        let (stop, stopped) = watch::channel(false);
        let running = tokio::spawn(dispatcher.run(queue, Arc::new(Notify::new()), stopped));

        assert!(hand_off.hand(handed(&[2], 15)));
        let first = tokio::time::timeout(Duration::from_secs(5), marked.recv()).await;
        assert_eq!(first.expect("the handed delivery waited"), Some(2));

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
    fn jitter_adds_at_most_a_tenth_and_differs_between_deliveries() {
        let delay = Duration::from_secs(100);
        let waits: Vec<Duration> = (1..50)
            .map(|id| with_jitter(delay, Lease { id, attempts: 1 }))
            .collect();
        assert!(
            waits
                .iter()
                .all(|w| *w >= delay && *w <= delay + delay / 10)
        );
        assert!(waits.iter().any(|w| *w != waits[0]), "no spread: {waits:?}");
    }
}
