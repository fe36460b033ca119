//! Contract: webhook subscriptions and deliveries (the `WebhookStore` port). Subscriptions are
//! created, listed and removed with their deliveries; an event fans out to the subscriptions
//! asking for its type, once per subscription however often it is handed over, each delivery
//! created already claimed for its first try; deliveries are claimed under a lease, each claim
//! one more attempt, and every mark is fenced by the claim's lease; a failed or dead delivery
//! can be re-queued, a pending or delivered one can't.

use std::sync::Arc;

use approvals::domain::WorkflowError;
use approvals::domain::model::{CallbackKind, Done, Lease};
use approvals::domain::webhooks::model::{
    ClaimedDelivery, Delivery, DeliveryCounts, DeliveryId, DeliveryMark, DeliveryStatus,
    EventTypes, FanOutEvent, MarkOutcome, NewSubscription, Subscription, WebhookSecret, WebhookUrl,
};
use approvals::domain::webhooks::ports::WebhookStore;
use chrono::{DateTime, TimeDelta, Utc};

use super::ContractStore;
use crate::fixtures::at;

contract_tests! {
    case_subscriptions_are_created_listed_and_removed =>
        memory_subscriptions_are_created_listed_and_removed,
        postgres_subscriptions_are_created_listed_and_removed;
    case_events_fan_out_once_per_matching_subscription =>
        memory_events_fan_out_once_per_matching_subscription,
        postgres_events_fan_out_once_per_matching_subscription;
    case_a_round_of_events_fans_out_in_one_call =>
        memory_a_round_of_events_fans_out_in_one_call,
        postgres_a_round_of_events_fans_out_in_one_call;
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

fn event(id: &str, kind: CallbackKind) -> FanOutEvent {
    FanOutEvent {
        event_id: id.to_owned(),
        kind,
        body: format!(r#"{{"id":"{id}","type":"{}"}}"#, kind.event_type()),
    }
}

/// Fans out with the same 60 s lease as `claim`.
async fn fan_out<S: WebhookStore>(
    store: &S,
    events: Vec<FanOutEvent>,
    now: DateTime<Utc>,
) -> Vec<ClaimedDelivery> {
    store
        .fan_out(events, now, now + TimeDelta::seconds(60))
        .await
        .unwrap()
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
    fan_out(&*store, vec![event("evt_1", CallbackKind::OnRejected)], now).await;
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

/// The dispatcher hands a whole round over at once: each event gets its own matches, and an
/// event handed over before gets nothing more.
async fn case_a_round_of_events_fans_out_in_one_call<S: ContractStore + WebhookStore>(
    store: Arc<S>,
) {
    let now = at(9, 0, 0);
    let approvals = subscribe(
        &*store,
        "https://a.example.com/",
        &["instance.approved"],
        now,
    )
    .await;
    let steps = subscribe(
        &*store,
        "https://b.example.com/",
        &["instance.approved", "step.awaiting_action"],
        now,
    )
    .await;
    assert_eq!(
        fan_out(&*store, vec![event("evt_a", CallbackKind::OnApproved)], now)
            .await
            .len(),
        2
    );
    let round = vec![
        event("evt_b", CallbackKind::StepAwaitingAction),
        event("evt_a", CallbackKind::OnApproved),
        event("evt_c", CallbackKind::OnCancelled),
        event("evt_d", CallbackKind::OnApproved),
    ];
    assert_eq!(fan_out(&*store, round.clone(), now).await.len(), 3);
    assert!(fan_out(&*store, round, now).await.is_empty());
    let ids = |deliveries: Vec<Delivery>| {
        let mut ids: Vec<String> = deliveries.into_iter().map(|d| d.event_id).collect();
        ids.sort_unstable();
        ids
    };
    assert_eq!(
        ids(store.deliveries(approvals.id, None).await.unwrap()),
        ["evt_a", "evt_d"]
    );
    assert_eq!(
        ids(store.deliveries(steps.id, None).await.unwrap()),
        ["evt_a", "evt_b", "evt_d"]
    );
    assert!(fan_out(&*store, Vec::new(), now).await.is_empty());
}

async fn case_events_fan_out_once_per_matching_subscription<S: ContractStore + WebhookStore>(
    store: Arc<S>,
) {
    let now = at(9, 0, 0);
    let approvals = subscribe(
        &*store,
        "https://a.example.com/",
        &["instance.approved"],
        now,
    )
    .await;
    let everything = subscribe(
        &*store,
        "https://b.example.com/",
        &["instance.approved", "step.awaiting_action"],
        now,
    )
    .await;
    let approved = event("evt_a", CallbackKind::OnApproved);
    let mut created = fan_out(&*store, vec![approved.clone()], now).await;
    assert_eq!(created.len(), 2);
    // The outbox hands the same event over again: nothing more.
    assert!(fan_out(&*store, vec![approved], now).await.is_empty());
    let awaiting = event("evt_b", CallbackKind::StepAwaitingAction);
    created.extend(fan_out(&*store, vec![awaiting], now).await);
    assert_eq!(created.len(), 3);
    let cancelled = event("evt_c", CallbackKind::OnCancelled);
    assert!(fan_out(&*store, vec![cancelled], now).await.is_empty());
    let of_approvals = store.deliveries(approvals.id, None).await.unwrap();
    assert_eq!(of_approvals.len(), 1);
    let delivery = &of_approvals[0];
    assert_eq!(delivery.event_id, "evt_a");
    assert_eq!(delivery.event_type, CallbackKind::OnApproved);
    assert_eq!(delivery.status, DeliveryStatus::Pending);
    // Created claimed for its first try.
    assert_eq!(delivery.attempts, 1);
    assert_eq!(delivery.next_attempt_at, Some(now));
    assert_eq!(
        (delivery.delivered_at, delivery.last_error.as_ref()),
        (None, None)
    );
    // Newest first.
    let ids: Vec<String> = store
        .deliveries(everything.id, None)
        .await
        .unwrap()
        .into_iter()
        .map(|d| d.event_id)
        .collect();
    assert_eq!(ids, ["evt_b", "evt_a"]);
    assert_eq!(
        store.delivery_counts().await.unwrap(),
        DeliveryCounts {
            pending: 3,
            ..DeliveryCounts::default()
        }
    );
    // Each created delivery carries what sending takes: its lease (the first attempt), the
    // subscription's URL and secret, the body.
    assert!(created.iter().all(|c| c.lease.attempts == 1));
    let to_approvals = created
        .iter()
        .find(|c| c.url == approvals.url)
        .expect("a delivery for the first subscription");
    assert_eq!(to_approvals.lease.id, delivery.id.get());
    assert_eq!(to_approvals.secret, approvals.secret);
    assert_eq!(to_approvals.event_id, "evt_a");
    assert_eq!(
        to_approvals.body,
        r#"{"id":"evt_a","type":"instance.approved"}"#
    );
    // Leased to the fan-out's caller: claimed by nobody else until that lease ends, then by
    // anyone, with the same URL, secret and body, as a second attempt.
    assert!(
        claim(&*store, now + TimeDelta::seconds(59))
            .await
            .is_empty()
    );
    let mut claimed = claim(&*store, now + TimeDelta::seconds(61)).await;
    claimed.sort_by_key(|c| c.lease.id);
    created.sort_by_key(|c| c.lease.id);
    for (claim, created) in claimed.iter().zip(&created) {
        assert_eq!(claim.lease.attempts, 2);
        assert_eq!(
            (
                claim.lease.id,
                &claim.url,
                &claim.secret,
                &claim.event_id,
                &claim.body
            ),
            (
                created.lease.id,
                &created.url,
                &created.secret,
                &created.event_id,
                &created.body
            )
        );
    }
    assert_eq!(claimed.len(), 3);
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
    let created = fan_out(&*store, vec![event("evt_1", CallbackKind::OnApproved)], now).await;
    // Created claimed: held while leased, by the fan-out's caller, as the first attempt.
    let first = created[0].lease;
    assert_eq!(first.attempts, 1);
    for at in [
        now - TimeDelta::seconds(1),
        now,
        now + TimeDelta::seconds(59),
    ] {
        assert!(claim(&*store, at).await.is_empty(), "claimed at {at}");
    }

    // The lease ran out: its holder's mark is refused, even after a new claim took it.
    let late = now + TimeDelta::seconds(61);
    let ok = MarkOutcome::Delivered { status: 200 };
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
            attempts: 2
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
    assert_eq!(failed_one[0].attempts, 2);
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

    // Delivered on the third try: never claimed again.
    let third = claim(&*store, retry_at).await[0].lease;
    assert_eq!(third.attempts, 3);
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
    let mut claims = Vec::new();
    for id in ["evt_1", "evt_2"] {
        claims.extend(fan_out(&*store, vec![event(id, CallbackKind::OnApproved)], now).await);
    }
    claims.sort_by_key(|c| c.lease.id);
    let (dying, delivering) = (claims[0].lease, claims[1].lease);
    let dying_id = DeliveryId::new(dying.id).unwrap();
    let delivering_id = DeliveryId::new(delivering.id).unwrap();

    // Leased right now: a retry would send it twice at once.
    let refused = store.retry_delivery(dying_id, now, None).await;
    assert!(
        matches!(refused, Err(WorkflowError::DeliveryNotRetryable { .. })),
        "{refused:?}"
    );
    store
        .mark_deliveries(
            vec![
                mark(dying, failed(None)),
                mark(delivering, MarkOutcome::Delivered { status: 204 }),
            ],
            now,
        )
        .await
        .unwrap();
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
    assert_eq!(retried.attempts, 1);
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
            attempts: 2
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
