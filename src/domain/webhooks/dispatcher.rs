//! The webhook dispatcher: sends deliveries, at least once, retrying on the configured
//! schedule with jitter, then giving up (`dead`).
//!
//! It drives three ports (the store's webhook half, the sender, the clock) and owns no state,
//! so any number of dispatchers in any number of processes can run at once.
//!
//! - **First tries** are sent by the outbox dispatcher's round, through
//!   [`WebhookDispatcher::send_first_tries`], before any delivery row exists: the event's outbox
//!   claim keeps other processes off it, and one write then creates every delivery of the round
//!   with its outcome, fenced by that claim. A delivered event's delivery is written once. A
//!   process that dies between a try and its record leaves the event claimed but unmarked: it
//!   comes round again when the claim ends, and its tries are sent again, with the same
//!   `webhook-id`.
//! - **Retries** are claimed from the store (`FOR UPDATE SKIP LOCKED` and a lease) by
//!   [`WebhookDispatcher::run`], and every outcome is recorded fenced by the claim's lease, so a
//!   dispatcher whose lease ran out never overwrites what a later claim recorded.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures_util::future;
use tokio::sync::{Notify, watch};

use super::model::{
    ClaimedDelivery, DeliveryMark, FanOutEvent, FirstTry, MarkOutcome, RetrySchedule, SendOutcome,
    SubscriptionId, WebhookMessage,
};
use super::ports::{WebhookSender, WebhookStore};
use crate::domain::WorkflowError;
use crate::domain::dispatcher::to_chrono;
use crate::domain::model::Lease;
use crate::domain::ports::Clock;

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
    /// The longest a try may take (the sender's time-out): first tries are sent only while
    /// their event's outbox claim outlasts a whole try, so that none is still in flight when
    /// another process may take the event over.
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

/// Sends webhook deliveries through a [`WebhookSender`].
pub struct WebhookDispatcher<W, S, C> {
    store: Arc<W>,
    sender: Arc<S>,
    clock: Arc<C>,
    config: WebhookDispatchConfig,
}

// Not derived: the adapters themselves need not be `Clone`, only their `Arc`s are cloned.
impl<W, S, C> Clone for WebhookDispatcher<W, S, C> {
    fn clone(&self) -> Self {
        Self {
            store: Arc::clone(&self.store),
            sender: Arc::clone(&self.sender),
            clock: Arc::clone(&self.clock),
            config: self.config.clone(),
        }
    }
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

    /// One round of retries: claims due deliveries, tries each once (all at once) and records
    /// the outcomes in one write. Returns how many were claimed.
    pub async fn run_once(&self) -> Result<usize, WorkflowError> {
        let now = self.clock.now();
        let lease_until = now + to_chrono(self.config.lease);
        let claimed = self
            .store
            .claim_deliveries(now, lease_until, self.config.batch)
            .await?;
        let count = claimed.len();
        if count == 0 {
            return Ok(0);
        }
        let outcomes: Vec<(Lease, SendOutcome)> = future::join_all(claimed.into_iter().map(
            |delivery: ClaimedDelivery| async move {
                // Each try is stamped with the time it is sent.
                let outcome = self.sender.send(&delivery.message, self.clock.now()).await;
                (delivery.lease, outcome)
            },
        ))
        .await;
        let done = self.clock.now();
        let marks: Vec<DeliveryMark> = outcomes
            .into_iter()
            .map(|(lease, outcome)| DeliveryMark {
                lease,
                outcome: self.record(
                    lease.attempts,
                    jitter_seed(lease.id, 0),
                    outcome,
                    done,
                    || format!("delivery {}", lease.id),
                ),
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

    /// Sends the first try of each event to every subscription asking for its kind that has no
    /// delivery of it yet (all at once), then creates their deliveries, with the outcomes, in
    /// one write fenced by the events' outbox claims, which end at `held_until`. Nothing is
    /// sent if that claim would not outlast a whole try (`Unavailable`: the events come round
    /// again). Returns how many tries were sent.
    pub async fn send_first_tries(
        &self,
        events: Vec<FanOutEvent>,
        held_until: DateTime<Utc>,
    ) -> Result<usize, WorkflowError> {
        if events.is_empty() {
            return Ok(0);
        }
        if held_until - self.clock.now() <= to_chrono(self.config.try_timeout) {
            return Err(WorkflowError::Unavailable(
                "the events' outbox claim would end before a webhook try could".to_owned(),
            ));
        }
        let subscriptions = self.store.subscriptions().await?;
        if subscriptions.is_empty() {
            return Ok(0);
        }
        // Handed over again (an adapter failed, or a process died before marking it): the
        // tries recorded before are the retries' to send, not sent again here.
        let again: Vec<String> = events
            .iter()
            .filter(|e| e.outbox.attempts > 1)
            .map(|e| e.event_id.clone())
            .collect();
        let recorded: HashSet<(SubscriptionId, String)> = if again.is_empty() {
            HashSet::new()
        } else {
            self.store
                .recorded_deliveries(again)
                .await?
                .into_iter()
                .collect()
        };
        let tries: Vec<(&FanOutEvent, WebhookMessage, SubscriptionId)> = events
            .iter()
            .flat_map(|event| {
                subscriptions
                    .iter()
                    .filter(|s| s.event_types.contains(event.kind))
                    .filter(|s| !recorded.contains(&(s.id, event.event_id.clone())))
                    .map(move |s| {
                        let message = WebhookMessage {
                            url: s.url.clone(),
                            secret: s.secret.clone(),
                            event_id: event.event_id.clone(),
                            body: event.body.clone(),
                        };
                        (event, message, s.id)
                    })
            })
            .collect();
        let count = tries.len();
        if count == 0 {
            return Ok(0);
        }
        let outcomes = future::join_all(tries.into_iter().map(
            |(event, message, subscription)| async move {
                let outcome = self.sender.send(&message, self.clock.now()).await;
                (event, message, subscription, outcome)
            },
        ))
        .await;
        let done = self.clock.now();
        let records: Vec<FirstTry> = outcomes
            .into_iter()
            .map(|(event, message, subscription, outcome)| FirstTry {
                outcome: self.record(
                    1,
                    jitter_seed(event.outbox.id, subscription.get()),
                    outcome,
                    done,
                    || format!("{} to subscription {subscription}", event.event_id),
                ),
                subscription_id: subscription,
                event_id: message.event_id,
                kind: event.kind,
                body: message.body,
                outbox: event.outbox,
            })
            .collect();
        let expected = records.len() as u64;
        let created = self.store.record_first_tries(records, done).await?;
        if created < expected {
            // Their event's outbox claim ran out mid-try (the event comes round again, and so
            // do they), or another process recorded them first.
            tracing::warn!(
                lost = expected - created,
                "first webhook tries not recorded; their events come round again"
            );
        }
        Ok(count)
    }

    /// How a try's outcome is recorded: a failure is retried after the schedule's next delay
    /// (with jitter drawn from `seed`), or is dead when the schedule has run out. `what` names
    /// the delivery in the log.
    fn record(
        &self,
        attempts: i32,
        seed: u64,
        outcome: SendOutcome,
        done: DateTime<Utc>,
        what: impl Fn() -> String,
    ) -> MarkOutcome {
        match outcome {
            SendOutcome::Delivered { status } => MarkOutcome::Delivered { status },
            SendOutcome::Failed { status, error } => {
                let retry_at = self
                    .config
                    .schedule
                    .delay_after(attempts)
                    .map(|delay| done + to_chrono(with_jitter(delay, seed, attempts)));
                match retry_at {
                    Some(at) => {
                        tracing::warn!(delivery = %what(), attempts, %error, retry_at = %at, "webhook delivery failed; will retry")
                    }
                    None => {
                        tracing::warn!(delivery = %what(), attempts, %error, "webhook delivery failed on its last try; it is dead")
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

    /// Runs retry rounds until `shutdown` turns true: right away when `wake` is notified (a
    /// retry asked for) or a round was full, else every poll interval. Store errors are logged
    /// and retried on the next round. On shutdown, the round in flight finishes and is
    /// recorded.
    pub async fn run(self, wake: Arc<Notify>, mut shutdown: watch::Receiver<bool>) {
        loop {
            if *shutdown.borrow() {
                return;
            }
            match self.run_once().await {
                // A full batch suggests more are due: go again without waiting.
                Ok(n) if n >= self.config.batch as usize => continue,
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "webhook dispatch round failed"),
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
}

/// A jitter seed from two numbers that tell deliveries apart (a delivery's id; or an event's
/// outbox id and a subscription's id, before the delivery has an id).
fn jitter_seed(a: i64, b: i64) -> u64 {
    (a as u64)
        .wrapping_mul(0x9E37_79B9_7F4A_7C15)
        .wrapping_add((b as u64).wrapping_mul(0xC2B2_AE3D_27D4_EB4F))
}

/// `delay` stretched by up to 10%, by an amount drawn from the delivery's seed and its attempt:
/// the deliveries of one failing receiver spread out instead of retrying in one burst, and the
/// same try always waits the same (which keeps the core free of a random source).
fn with_jitter(delay: Duration, seed: u64, attempts: i32) -> Duration {
    let seed = seed
        .wrapping_add(attempts as u64)
        .wrapping_mul(0xBF58_476D_1CE4_E5B9);
    let per_mille = (seed >> 33) % 101;
    delay + delay.mul_f64(per_mille as f64 / 1000.0)
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use tokio::sync::mpsc;

    use super::*;
    use crate::domain::model::CallbackKind;
    use crate::domain::ports::MockClock;
    use crate::domain::webhooks::model::{EventTypes, Subscription, WebhookSecret, WebhookUrl};
    use crate::domain::webhooks::ports::{MockWebhookSender, MockWebhookStore};

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, 1, 12, 0, 0).unwrap()
    }

    fn message(event_id: &str) -> WebhookMessage {
        WebhookMessage {
            url: WebhookUrl::parse("https://hooks.example.com/in").unwrap(),
            secret: WebhookSecret::from_stored("whsec_AAAA".to_owned()),
            event_id: event_id.to_owned(),
            body: "{}".to_owned(),
        }
    }

    fn claimed(id: i64, attempts: i32) -> ClaimedDelivery {
        ClaimedDelivery {
            lease: Lease { id, attempts },
            message: message(&format!("evt_{id}")),
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
        sender.expect_send().times(3).returning(|message, at| {
            assert_eq!(at, now());
            let outcome = match message.event_id.as_str() {
                "evt_1" => SendOutcome::Delivered { status: 204 },
                "evt_2" => SendOutcome::Failed {
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
            async fn send(&self, _: &WebhookMessage, _: DateTime<Utc>) -> SendOutcome {
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

    fn subscription(id: i64, url: &str, kinds: &[&str]) -> Subscription {
        Subscription {
            id: SubscriptionId::new(id).unwrap(),
            url: WebhookUrl::parse(url).unwrap(),
            event_types: EventTypes::parse(kinds.iter().copied()).unwrap(),
            secret: WebhookSecret::from_stored(format!("whsec_{id}AAA")),
            created_at: now(),
        }
    }

    fn event(id: &str, kind: CallbackKind, outbox: Lease) -> FanOutEvent {
        FanOutEvent {
            event_id: id.to_owned(),
            kind,
            body: format!("{{\"id\":\"{id}\"}}"),
            outbox,
        }
    }

    /// Two subscriptions, one asking for approvals only: each event goes to every subscription
    /// that asks for its kind, with its URL, secret and body, and the tries are recorded in one
    /// write, each under its event's outbox claim, with its outcome.
    #[tokio::test]
    async fn first_tries_go_to_each_matching_subscription_and_are_recorded_in_one_write() {
        let mut store = MockWebhookStore::new();
        store.expect_subscriptions().times(1).returning(|| {
            Box::pin(async {
                Ok(vec![
                    subscription(1, "https://a.example.com/in", &["instance.approved"]),
                    subscription(
                        2,
                        "https://b.example.com/in",
                        &["instance.approved", "instance.rejected"],
                    ),
                ])
            })
        });
        store.expect_recorded_deliveries().never();
        store
            .expect_record_first_tries()
            .times(1)
            .returning(|mut tries, at| {
                assert_eq!(at, now());
                tries.sort_by(|a, b| {
                    (&a.event_id, a.subscription_id).cmp(&(&b.event_id, b.subscription_id))
                });
                let got: Vec<(&str, i64, i64)> = tries
                    .iter()
                    .map(|t| (t.event_id.as_str(), t.subscription_id.get(), t.outbox.id))
                    .collect();
                assert_eq!(got, [("evt_a", 1, 10), ("evt_a", 2, 10), ("evt_r", 2, 11)]);
                assert!(tries.iter().all(|t| t.outbox.attempts == 1));
                assert_eq!(tries[0].outcome, MarkOutcome::Delivered { status: 200 });
                assert_eq!(tries[2].kind, CallbackKind::OnRejected);
                assert_eq!(tries[2].body, "{\"id\":\"evt_r\"}");
                // Subscription 2 failed: retried after the schedule's first delay, jittered.
                let MarkOutcome::Failed {
                    retry_at: Some(at), ..
                } = tries[1].outcome
                else {
                    panic!("not retried: {:?}", tries[1].outcome);
                };
                let wait = at - now();
                assert!(
                    wait >= chrono::Duration::seconds(1)
                        && wait <= chrono::Duration::milliseconds(1100),
                    "{wait}"
                );
                Box::pin(async { Ok(3) })
            });
        let (sent_tx, mut sent) = mpsc::unbounded_channel();
        let mut sender = MockWebhookSender::new();
        sender.expect_send().times(3).returning(move |message, _| {
            sent_tx
                .send((message.url.as_str().to_owned(), message.event_id.clone()))
                .unwrap();
            let outcome = if message.url.as_str().contains("//b.") {
                SendOutcome::Failed {
                    status: Some(503),
                    error: "busy".to_owned(),
                }
            } else {
                SendOutcome::Delivered { status: 200 }
            };
            Box::pin(async move { outcome })
        });
        let dispatcher = dispatcher(store, sender);
        let events = vec![
            event(
                "evt_a",
                CallbackKind::OnApproved,
                Lease {
                    id: 10,
                    attempts: 1,
                },
            ),
            event(
                "evt_r",
                CallbackKind::OnRejected,
                Lease {
                    id: 11,
                    attempts: 1,
                },
            ),
            event(
                "evt_c",
                CallbackKind::OnCancelled,
                Lease {
                    id: 12,
                    attempts: 1,
                },
            ),
        ];
        let held_until = now() + chrono::Duration::seconds(15);
        assert_eq!(
            dispatcher
                .send_first_tries(events, held_until)
                .await
                .unwrap(),
            3
        );
        let mut got = Vec::new();
        while let Ok(one) = sent.try_recv() {
            got.push(one);
        }
        got.sort();
        assert_eq!(
            got,
            [
                ("https://a.example.com/in".to_owned(), "evt_a".to_owned()),
                ("https://b.example.com/in".to_owned(), "evt_a".to_owned()),
                ("https://b.example.com/in".to_owned(), "evt_r".to_owned()),
            ]
        );
    }

    /// An event handed over again (its outbox claim's second attempt) is not sent to a
    /// subscription that already has its delivery; only such events are looked up.
    #[tokio::test]
    async fn an_event_handed_over_again_skips_the_tries_recorded_before() {
        let mut store = MockWebhookStore::new();
        store.expect_subscriptions().returning(|| {
            Box::pin(async {
                Ok(vec![
                    subscription(1, "https://a.example.com/in", &["instance.approved"]),
                    subscription(2, "https://b.example.com/in", &["instance.approved"]),
                ])
            })
        });
        store
            .expect_recorded_deliveries()
            .withf(|ids| ids == &["evt_again".to_owned()])
            .times(1)
            .returning(|_| {
                Box::pin(async {
                    Ok(vec![(
                        SubscriptionId::new(1).unwrap(),
                        "evt_again".to_owned(),
                    )])
                })
            });
        store
            .expect_record_first_tries()
            .times(1)
            .returning(|tries, _| {
                let mut got: Vec<(String, i64)> = tries
                    .iter()
                    .map(|t| (t.event_id.clone(), t.subscription_id.get()))
                    .collect();
                got.sort();
                assert_eq!(
                    got,
                    [
                        ("evt_again".to_owned(), 2),
                        ("evt_new".to_owned(), 1),
                        ("evt_new".to_owned(), 2)
                    ]
                );
                Box::pin(async { Ok(3) })
            });
        let mut sender = MockWebhookSender::new();
        sender
            .expect_send()
            .times(3)
            .returning(|_, _| Box::pin(async { SendOutcome::Delivered { status: 204 } }));
        let dispatcher = dispatcher(store, sender);
        let events = vec![
            event(
                "evt_again",
                CallbackKind::OnApproved,
                Lease { id: 1, attempts: 2 },
            ),
            event(
                "evt_new",
                CallbackKind::OnApproved,
                Lease { id: 2, attempts: 1 },
            ),
        ];
        let sent = dispatcher
            .send_first_tries(events, now() + chrono::Duration::seconds(15))
            .await
            .unwrap();
        assert_eq!(sent, 3);
    }

    /// A claim that would end before a whole try could: nothing is read, sent or written, and
    /// the round fails (its events come round again).
    #[tokio::test]
    async fn first_tries_are_not_sent_on_a_claim_about_to_end() {
        let mut store = MockWebhookStore::new();
        store.expect_subscriptions().never();
        store.expect_record_first_tries().never();
        let mut sender = MockWebhookSender::new();
        sender.expect_send().never();
        let dispatcher = dispatcher(store, sender);
        let try_timeout = config().try_timeout.as_secs() as i64;
        let events = vec![event(
            "evt_a",
            CallbackKind::OnApproved,
            Lease { id: 1, attempts: 1 },
        )];
        let round = dispatcher
            .send_first_tries(events, now() + chrono::Duration::seconds(try_timeout))
            .await;
        assert!(
            matches!(round, Err(WorkflowError::Unavailable(_))),
            "{round:?}"
        );
    }

    /// No subscription, or none asking for the kind: nothing sent, nothing written.
    #[tokio::test]
    async fn first_tries_without_a_matching_subscription_write_nothing() {
        let mut store = MockWebhookStore::new();
        let mut calls = 0;
        store.expect_subscriptions().times(2).returning(move || {
            calls += 1;
            let all = if calls == 1 {
                Vec::new()
            } else {
                vec![subscription(
                    1,
                    "https://a.example.com/in",
                    &["instance.rejected"],
                )]
            };
            Box::pin(async move { Ok(all) })
        });
        store.expect_record_first_tries().never();
        let mut sender = MockWebhookSender::new();
        sender.expect_send().never();
        let dispatcher = dispatcher(store, sender);
        for _ in 0..2 {
            let events = vec![event(
                "evt_a",
                CallbackKind::OnApproved,
                Lease { id: 1, attempts: 1 },
            )];
            let sent = dispatcher
                .send_first_tries(events, now() + chrono::Duration::seconds(15))
                .await
                .unwrap();
            assert_eq!(sent, 0);
        }
    }

    /// The retry loop claims right away when woken, and stops when asked.
    #[tokio::test]
    async fn the_loop_claims_when_woken_and_stops_when_asked() {
        let (claimed_tx, mut claims) = mpsc::unbounded_channel();
        let mut store = MockWebhookStore::new();
        store.expect_claim_deliveries().returning(move |_, _, _| {
            claimed_tx.send(()).unwrap();
            Box::pin(async { Ok(Vec::new()) })
        });
        let dispatcher = WebhookDispatcher::new(
            Arc::new(store),
            Arc::new(MockWebhookSender::new()),
            Arc::new(clock()),
            WebhookDispatchConfig {
                poll_interval: Duration::from_secs(3600),
                ..config()
            },
        );
        let wake = Arc::new(Notify::new());
        let (stop, stopped) = watch::channel(false);
        let running = tokio::spawn(dispatcher.run(Arc::clone(&wake), stopped));
        let wait = Duration::from_secs(5);
        assert!(
            tokio::time::timeout(wait, claims.recv()).await.is_ok(),
            "first round"
        );
        wake.notify_one();
        assert!(
            tokio::time::timeout(wait, claims.recv()).await.is_ok(),
            "woken round"
        );
        stop.send(true).unwrap();
        tokio::time::timeout(wait, running)
            .await
            .expect("the loop stopped")
            .unwrap();
    }

    #[test]
    fn jitter_adds_at_most_a_tenth_and_differs_between_deliveries() {
        let delay = Duration::from_secs(100);
        let waits: Vec<Duration> = (1..50)
            .map(|id| with_jitter(delay, jitter_seed(id, 0), 1))
            .collect();
        assert!(
            waits
                .iter()
                .all(|w| *w >= delay && *w <= delay + delay / 10)
        );
        assert!(waits.iter().any(|w| *w != waits[0]), "no spread: {waits:?}");
        let per_subscription: Vec<Duration> = (1..50)
            .map(|subscription| with_jitter(delay, jitter_seed(7, subscription), 1))
            .collect();
        assert!(
            per_subscription.iter().any(|w| *w != per_subscription[0]),
            "no spread between subscriptions: {per_subscription:?}"
        );
    }
}
