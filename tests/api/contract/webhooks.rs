//! Contract: webhook subscriptions and deliveries (the `WebhookStore` port). Subscriptions are
//! created, listed and removed with their deliveries; a round's first tries create their
//! deliveries with their outcomes, once per subscription and event however often they are
//! recorded, and only while the event's outbox claim holds; deliveries are claimed under a
//! lease, each claim one more attempt, and every mark is fenced by the claim's lease; a failed
//! or dead delivery can be re-queued, a pending or delivered one can't.

use std::sync::Arc;

use approvals::domain::WorkflowError;
use approvals::domain::model::{CallbackKind, Done, Lease, OutboxItem};
use approvals::domain::webhooks::model::{
    ClaimedDelivery, Delivery, DeliveryCounts, DeliveryId, DeliveryMark, DeliveryStatus,
    EventTypes, FirstTry, MarkOutcome, NewSubscription, Subscription, WebhookSecret, WebhookUrl,
};
use approvals::domain::webhooks::ports::WebhookStore;
use chrono::{DateTime, TimeDelta, Utc};

use super::{ContractStore, start};
use crate::fixtures::{CANCELLATION, at};

contract_tests! {
    case_subscriptions_are_created_listed_and_removed =>
        memory_subscriptions_are_created_listed_and_removed,
        postgres_subscriptions_are_created_listed_and_removed;
    case_first_tries_create_their_deliveries_once =>
        memory_first_tries_create_their_deliveries_once,
        postgres_first_tries_create_their_deliveries_once;
    case_first_tries_are_fenced_by_the_outbox_claim =>
        memory_first_tries_are_fenced_by_the_outbox_claim,
        postgres_first_tries_are_fenced_by_the_outbox_claim;
    case_delivery_claims_are_leased_and_marks_fenced =>
        memory_delivery_claims_are_leased_and_marks_fenced,
        postgres_delivery_claims_are_leased_and_marks_fenced;
    case_only_failed_or_dead_deliveries_are_retried =>
        memory_only_failed_or_dead_deliveries_are_retried,
        postgres_only_failed_or_dead_deliveries_are_retried;
}

async fn subscribe<S: WebhookStore>(
    store: &S,
    url: &str,
    types: &[&str],
    now: DateTime<Utc>,
) -> Subscription {
    store
        .create_subscription(
            NewSubscription {
                url: WebhookUrl::parse(url).unwrap(),
                event_types: EventTypes::parse(types.iter().copied()).unwrap(),
                secret: WebhookSecret::generate().unwrap(),
                created_at: now,
            },
            None,
        )
        .await
        .and_then(Done::unkeyed)
        .expect("subscription stored")
}

/// `n` events in the outbox (each a new instance's `step.awaiting_action`), claimed at `now`
/// for 60 s, as the outbox dispatcher's round holds them.
async fn held_events<S: ContractStore>(store: &S, n: i64, now: DateTime<Utc>) -> Vec<OutboxItem> {
    for entity in 0..n {
        start(
            store,
            CANCELLATION,
            "booking",
            500 + entity,
            3,
            now - TimeDelta::seconds(1),
        )
        .await
        .unwrap();
    }
    let mut held = store
        .claim_callbacks(now, now + TimeDelta::seconds(60), 100)
        .await
        .unwrap();
    held.sort_by_key(|item| item.id);
    assert_eq!(held.len() as i64, n);
    held
}

/// The first try of `event` to `subscription`, as the dispatcher records it.
fn first_try(subscription: &Subscription, event: &OutboxItem, outcome: MarkOutcome) -> FirstTry {
    FirstTry {
        subscription_id: subscription.id,
        event_id: event.event_id.clone(),
        kind: CallbackKind::OnApproved,
        body: format!(r#"{{"id":"{}"}}"#, event.event_id),
        outbox: event.lease(),
        outcome,
    }
}

async fn record<S: WebhookStore>(store: &S, tries: Vec<FirstTry>, now: DateTime<Utc>) -> u64 {
    store.record_first_tries(tries, now).await.unwrap()
}

async fn claim<S: WebhookStore>(store: &S, now: DateTime<Utc>) -> Vec<ClaimedDelivery> {
    store
        .claim_deliveries(now, now + TimeDelta::seconds(60), 100)
        .await
        .unwrap()
}

fn mark(lease: Lease, outcome: MarkOutcome) -> DeliveryMark {
    DeliveryMark { lease, outcome }
}

fn failed(retry_at: Option<DateTime<Utc>>) -> MarkOutcome {
    MarkOutcome::Failed {
        status: Some(503),
        error: "the receiver answered 503".to_owned(),
        retry_at,
    }
}

const OK: MarkOutcome = MarkOutcome::Delivered { status: 200 };

async fn case_subscriptions_are_created_listed_and_removed<S: ContractStore + WebhookStore>(
    store: Arc<S>,
) {
    let now = at(9, 0, 0);
    let first = subscribe(
        &*store,
        "https://a.example.com/in",
        &["instance.approved"],
        now,
    )
    .await;
    let second = subscribe(
        &*store,
        "http://b.example.com:8080/hook?x=1",
        &["step.awaiting_action", "instance.rejected"],
        now,
    )
    .await;
    assert!(second.id > first.id);
    assert_eq!(second.url.as_str(), "http://b.example.com:8080/hook?x=1");
    assert_eq!(
        second.event_types.kinds(),
        [CallbackKind::StepAwaitingAction, CallbackKind::OnRejected]
    );
    assert_eq!(second.created_at, now);
    assert!(second.secret.as_str().starts_with("whsec_"));
    assert_eq!(
        store.subscriptions().await.unwrap(),
        vec![first.clone(), second.clone()]
    );

    // Removing one takes its deliveries with it.
    let held = held_events(&*store, 1, now).await;
    assert_eq!(
        record(&*store, vec![first_try(&second, &held[0], OK)], now).await,
        1
    );
    assert_eq!(store.deliveries(second.id, None).await.unwrap().len(), 1);
    store.delete_subscription(second.id).await.unwrap();
    assert_eq!(store.subscriptions().await.unwrap(), vec![first.clone()]);
    assert_eq!(
        store.delivery_counts().await.unwrap(),
        DeliveryCounts::default()
    );
    for result in [
        store.delete_subscription(second.id).await,
        store.deliveries(second.id, None).await.map(|_| ()),
    ] {
        assert!(
            matches!(result, Err(WorkflowError::NotFound { .. })),
            "{result:?}"
        );
    }
}

/// A round's tries create their deliveries, each once, with its outcome and one attempt: a
/// delivered one is done, a failed one due at its retry, a dead one never claimed.
async fn case_first_tries_create_their_deliveries_once<S: ContractStore + WebhookStore>(
    store: Arc<S>,
) {
    let now = at(9, 0, 0);
    let a = subscribe(
        &*store,
        "https://a.example.com/",
        &["instance.approved"],
        now,
    )
    .await;
    let b = subscribe(
        &*store,
        "https://b.example.com/",
        &["instance.approved"],
        now,
    )
    .await;
    let held = held_events(&*store, 3, now).await;
    let retry_at = now + TimeDelta::seconds(5);
    let round = vec![
        first_try(&a, &held[0], OK),
        first_try(&b, &held[0], failed(Some(retry_at))),
        first_try(&a, &held[1], failed(None)),
        first_try(&b, &held[2], OK),
    ];
    assert_eq!(record(&*store, round.clone(), now).await, 4);
    // Recorded again (another process got there first): nothing more.
    assert_eq!(record(&*store, round, now).await, 0);
    assert_eq!(record(&*store, Vec::new(), now).await, 0);
    assert_eq!(
        store.delivery_counts().await.unwrap(),
        DeliveryCounts {
            delivered: 2,
            failed: 1,
            dead: 1,
            ..DeliveryCounts::default()
        }
    );
    // Newest first, each with its outcome.
    let of_a = store.deliveries(a.id, None).await.unwrap();
    assert_eq!(of_a.len(), 2);
    let (dead, delivered): (&Delivery, &Delivery) = (&of_a[0], &of_a[1]);
    assert_eq!(delivered.event_id, held[0].event_id);
    assert_eq!(delivered.event_type, CallbackKind::OnApproved);
    assert_eq!(delivered.status, DeliveryStatus::Delivered);
    assert_eq!(delivered.attempts, 1);
    assert_eq!(delivered.last_status_code, Some(200));
    assert_eq!(
        (
            delivered.delivered_at,
            delivered.next_attempt_at,
            delivered.created_at
        ),
        (Some(now), None, now)
    );
    assert_eq!(delivered.last_error, None);
    assert_eq!(dead.status, DeliveryStatus::Dead);
    assert_eq!(
        dead.last_error.as_deref(),
        Some("the receiver answered 503")
    );
    assert_eq!((dead.next_attempt_at, dead.delivered_at), (None, None));
    let of_b = store
        .deliveries(b.id, Some(DeliveryStatus::Failed))
        .await
        .unwrap();
    assert_eq!(of_b.len(), 1);
    assert_eq!(of_b[0].next_attempt_at, Some(retry_at));
    assert_eq!(of_b[0].last_status_code, Some(503));

    // Which subscriptions have a delivery of which of these events.
    let mut recorded = store
        .recorded_deliveries(vec![held[0].event_id.clone(), "evt_none".to_owned()])
        .await
        .unwrap();
    recorded.sort();
    assert_eq!(
        recorded,
        [
            (a.id, held[0].event_id.clone()),
            (b.id, held[0].event_id.clone())
        ]
    );
    assert!(
        store
            .recorded_deliveries(Vec::new())
            .await
            .unwrap()
            .is_empty()
    );

    // Only the failed one is claimed, when due, as a second attempt with what sending takes.
    assert!(
        claim(&*store, retry_at - TimeDelta::seconds(1))
            .await
            .is_empty()
    );
    let claimed = claim(&*store, retry_at).await;
    assert_eq!(claimed.len(), 1);
    assert_eq!(
        claimed[0].lease,
        Lease {
            id: of_b[0].id.get(),
            attempts: 2
        }
    );
    assert_eq!(claimed[0].message.url, b.url);
    assert_eq!(claimed[0].message.secret, b.secret);
    assert_eq!(claimed[0].message.event_id, held[0].event_id);
    assert_eq!(
        claimed[0].message.body,
        format!(r#"{{"id":"{}"}}"#, held[0].event_id)
    );
    // Once it is marked, nothing of the round is ever claimed again (the dead one included).
    let marked = store
        .mark_deliveries(vec![mark(claimed[0].lease, OK)], retry_at)
        .await
        .unwrap();
    assert_eq!(marked, 1);
    assert!(
        claim(&*store, retry_at + TimeDelta::days(1))
            .await
            .is_empty()
    );
}

/// A try is recorded only while its event's outbox claim holds: not after the claim ended,
/// not under an older claim's attempts, not once the event is marked. A subscription removed
/// meanwhile gets none, and the rest of the round is still recorded.
async fn case_first_tries_are_fenced_by_the_outbox_claim<S: ContractStore + WebhookStore>(
    store: Arc<S>,
) {
    let now = at(9, 0, 0);
    let sub = subscribe(
        &*store,
        "https://a.example.com/",
        &["instance.approved"],
        now,
    )
    .await;
    let gone = subscribe(
        &*store,
        "https://b.example.com/",
        &["instance.approved"],
        now,
    )
    .await;
    let held = held_events(&*store, 3, now).await;
    let lease_end = now + TimeDelta::seconds(60);
    assert_eq!(
        record(&*store, vec![first_try(&sub, &held[0], OK)], lease_end).await,
        0,
        "recorded after the claim ended"
    );
    let mut stale = first_try(&sub, &held[0], OK);
    stale.outbox = Lease {
        id: held[0].id,
        attempts: held[0].attempts - 1,
    };
    assert_eq!(
        record(&*store, vec![stale], now).await,
        0,
        "under an older claim"
    );
    store
        .mark_callbacks_delivered(vec![held[1].lease()], now)
        .await
        .unwrap();
    assert_eq!(
        record(&*store, vec![first_try(&sub, &held[1], OK)], now).await,
        0,
        "recorded after the event was marked"
    );
    store.delete_subscription(gone.id).await.unwrap();
    let round = vec![
        first_try(&gone, &held[2], OK),
        first_try(&sub, &held[2], OK),
        first_try(&sub, &held[0], OK),
    ];
    assert_eq!(
        record(&*store, round, now + TimeDelta::seconds(59)).await,
        2
    );
    let mut ids: Vec<String> = store
        .deliveries(sub.id, None)
        .await
        .unwrap()
        .into_iter()
        .map(|d| d.event_id)
        .collect();
    ids.sort();
    let mut want = vec![held[0].event_id.clone(), held[2].event_id.clone()];
    want.sort();
    assert_eq!(ids, want);
}

async fn case_delivery_claims_are_leased_and_marks_fenced<S: ContractStore + WebhookStore>(
    store: Arc<S>,
) {
    let now = at(9, 0, 0);
    let sub = subscribe(
        &*store,
        "https://a.example.com/",
        &["instance.approved"],
        now,
    )
    .await;
    // A first try that failed, due again right away: claimed as the second attempt, then
    // held while leased.
    let held = held_events(&*store, 1, now).await;
    assert_eq!(
        record(
            &*store,
            vec![first_try(&sub, &held[0], failed(Some(now)))],
            now
        )
        .await,
        1
    );
    let first = claim(&*store, now).await[0].lease;
    assert_eq!(first.attempts, 2);
    for at in [now, now + TimeDelta::seconds(59)] {
        assert!(claim(&*store, at).await.is_empty(), "claimed at {at}");
    }

    // The lease ran out: its holder's mark is refused, even after a new claim took it.
    let late = now + TimeDelta::seconds(61);
    let ok = OK;
    assert_eq!(
        store
            .mark_deliveries(vec![mark(first, ok.clone())], late)
            .await
            .unwrap(),
        0
    );
    let second = claim(&*store, late).await[0].lease;
    assert_eq!(
        second,
        Lease {
            id: first.id,
            attempts: 3
        }
    );
    assert_eq!(
        store
            .mark_deliveries(vec![mark(first, ok.clone())], late)
            .await
            .unwrap(),
        0,
        "the old holder never marks a delivery claimed again"
    );

    // A failure with a retry: failed, due then, with its status and error.
    let retry_at = late + TimeDelta::seconds(5);
    assert_eq!(
        store
            .mark_deliveries(vec![mark(second, failed(Some(retry_at)))], late)
            .await
            .unwrap(),
        1
    );
    let failed_one = store
        .deliveries(sub.id, Some(DeliveryStatus::Failed))
        .await
        .unwrap();
    assert_eq!(failed_one.len(), 1);
    assert_eq!(failed_one[0].attempts, 3);
    assert_eq!(failed_one[0].last_status_code, Some(503));
    assert_eq!(
        failed_one[0].last_error.as_deref(),
        Some("the receiver answered 503")
    );
    assert_eq!(failed_one[0].next_attempt_at, Some(retry_at));
    assert!(
        claim(&*store, retry_at - TimeDelta::seconds(1))
            .await
            .is_empty()
    );

    // Delivered on the fourth try: never claimed again.
    let third = claim(&*store, retry_at).await[0].lease;
    assert_eq!(third.attempts, 4);
    assert_eq!(
        store
            .mark_deliveries(vec![mark(third, ok)], retry_at)
            .await
            .unwrap(),
        1
    );
    let delivered = &store.deliveries(sub.id, None).await.unwrap()[0];
    assert_eq!(delivered.status, DeliveryStatus::Delivered);
    assert_eq!(delivered.delivered_at, Some(retry_at));
    assert_eq!(delivered.last_status_code, Some(200));
    assert_eq!(
        (delivered.last_error.as_ref(), delivered.next_attempt_at),
        (None, None)
    );
    assert!(
        claim(&*store, retry_at + TimeDelta::days(1))
            .await
            .is_empty()
    );
    assert!(
        store
            .deliveries(sub.id, Some(DeliveryStatus::Failed))
            .await
            .unwrap()
            .is_empty()
    );
}

async fn case_only_failed_or_dead_deliveries_are_retried<S: ContractStore + WebhookStore>(
    store: Arc<S>,
) {
    let now = at(9, 0, 0);
    let sub = subscribe(
        &*store,
        "https://a.example.com/",
        &["instance.approved"],
        now,
    )
    .await;
    let held = held_events(&*store, 2, now).await;
    let round = vec![
        first_try(&sub, &held[0], failed(Some(now))),
        first_try(&sub, &held[1], MarkOutcome::Delivered { status: 204 }),
    ];
    assert_eq!(record(&*store, round, now).await, 2);
    let dying = claim(&*store, now).await[0].lease;
    let dying_id = DeliveryId::new(dying.id).unwrap();
    let delivering_id = store
        .deliveries(sub.id, Some(DeliveryStatus::Delivered))
        .await
        .unwrap()[0]
        .id;

    // Leased right now: a retry would send it twice at once.
    let refused = store.retry_delivery(dying_id, now, None).await;
    assert!(
        matches!(refused, Err(WorkflowError::DeliveryNotRetryable { .. })),
        "{refused:?}"
    );
    assert_eq!(
        store
            .mark_deliveries(vec![mark(dying, failed(None))], now)
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        store.delivery_counts().await.unwrap(),
        DeliveryCounts {
            delivered: 1,
            dead: 1,
            ..DeliveryCounts::default()
        }
    );
    let dead = store
        .deliveries(sub.id, Some(DeliveryStatus::Dead))
        .await
        .unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].next_attempt_at, None);

    let later = now + TimeDelta::minutes(5);
    let retried = store
        .retry_delivery(dying_id, later, None)
        .await
        .and_then(Done::unkeyed)
        .unwrap();
    assert_eq!(retried.status, DeliveryStatus::Pending);
    assert_eq!(retried.next_attempt_at, Some(later));
    assert_eq!(retried.attempts, 2);
    // Pending again: not retryable; and it is claimed with its next attempt.
    for (id, status) in [(dying_id, "pending"), (delivering_id, "delivered")] {
        match store.retry_delivery(id, later, None).await {
            Err(WorkflowError::DeliveryNotRetryable { reason, .. }) => {
                assert!(reason.contains(status), "{reason}")
            }
            other => panic!("{other:?}"),
        }
    }
    let again = claim(&*store, later).await;
    assert_eq!(again.len(), 1);
    assert_eq!(
        again[0].lease,
        Lease {
            id: dying.id,
            attempts: 3
        }
    );
    let unknown = store
        .retry_delivery(DeliveryId::new(999_999).unwrap(), later, None)
        .await;
    assert!(
        matches!(unknown, Err(WorkflowError::NotFound { .. })),
        "{unknown:?}"
    );
}
