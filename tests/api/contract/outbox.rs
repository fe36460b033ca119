//! Contract: the event outbox. A trigger and every approval that activates a step store a
//! `step.awaiting_action`, an ended instance its outcome, each with a public id and the next
//! number of its instance's sequence; events are claimed under a lease, retried when due, never
//! claimed again once delivered, and every mark is fenced by the claim's lease.

use std::collections::BTreeSet;
use std::sync::Arc;

use approvals::domain::model::{
    CallbackEvent, CallbackKind, EventStep, FailedDelivery, InstanceId, InstanceStatus, Lease,
    OutboxItem,
};
use chrono::{DateTime, TimeDelta, Utc};

use super::{ContractStore, approve, reject, start, step_ids};
use crate::fixtures::{CANCELLATION, COMMISSION, at, entity_type, event, uid};

contract_tests! {
    case_outbox_claims_leases_and_retries =>
        memory_outbox_claims_leases_and_retries, postgres_outbox_claims_leases_and_retries;
    case_events_carry_ids_and_per_instance_sequence =>
        memory_events_carry_ids_and_per_instance_sequence,
        postgres_events_carry_ids_and_per_instance_sequence;
    case_marks_are_fenced_by_the_lease =>
        memory_marks_are_fenced_by_the_lease, postgres_marks_are_fenced_by_the_lease;
    case_a_recent_claim_takes_only_what_came_due_since =>
        memory_a_recent_claim_takes_only_what_came_due_since,
        postgres_a_recent_claim_takes_only_what_came_due_since;
}

async fn claim<S: ContractStore>(store: &S, now: DateTime<Utc>) -> Vec<OutboxItem> {
    store
        .claim_callbacks(now, now + TimeDelta::seconds(60), 100, None)
        .await
        .unwrap()
}

async fn delivered<S: ContractStore>(store: &S, items: &[OutboxItem], now: DateTime<Utc>) -> u64 {
    let leases = items.iter().map(OutboxItem::lease).collect();
    store.mark_callbacks_delivered(leases, now).await.unwrap()
}

async fn case_events_carry_ids_and_per_instance_sequence<S: ContractStore>(store: Arc<S>) {
    let t0 = at(15, 0, 0);
    let booking = start(&*store, CANCELLATION, "booking", 1, 3, t0)
        .await
        .unwrap();
    let (s1, s2) = step_ids(&booking);
    // The trigger's own event: step 1 awaits its approvers, caused by the initiator.
    let first = claim(&*store, t0).await;
    assert_eq!(first.len(), 1, "{first:?}");
    assert_eq!(first[0].sequence, 1);
    assert_eq!(
        first[0].event,
        CallbackEvent {
            kind: CallbackKind::StepAwaitingAction,
            instance_id: booking.id,
            event: event(CANCELLATION),
            entity_type: entity_type("booking"),
            entity_id: booking.entity_id,
            status: InstanceStatus::InProgress,
            step: Some(EventStep::of(&booking.steps[0])),
            decided_by: Some(uid(3)),
            comment: None,
            at: t0,
        }
    );
    assert!(!booking.steps[0].eligible_user_ids.is_empty());
    assert_eq!(delivered(&*store, &first, t0).await, 1);

    // Another instance's events count on their own.
    let other = start(&*store, COMMISSION, "commission", 1, 3, at(15, 0, 30))
        .await
        .unwrap();
    let t1 = at(15, 1, 0);
    let approved_one = approve(&*store, s1, 1, Some("fine"), t1).await.unwrap();
    let t2 = at(15, 2, 0);
    approve(&*store, s2, 2, Some("refund approved"), t2)
        .await
        .unwrap();
    let rest = claim(&*store, t2).await;
    let mine: Vec<&OutboxItem> = rest
        .iter()
        .filter(|i| i.event.instance_id == booking.id)
        .collect();
    assert_eq!(mine.len(), 2, "{rest:?}");
    assert_eq!(mine[0].sequence, 2);
    assert_eq!(mine[0].event.kind, CallbackKind::StepAwaitingAction);
    assert_eq!(
        mine[0].event.step,
        Some(EventStep::of(&approved_one.steps[1]))
    );
    assert_eq!(mine[0].event.decided_by, Some(uid(1)));
    assert_eq!(mine[0].event.at, t1);
    assert_eq!(mine[1].sequence, 3);
    assert_eq!(mine[1].event.kind, CallbackKind::OnApproved);
    assert_eq!(mine[1].event.status, InstanceStatus::Approved);
    let theirs: Vec<&OutboxItem> = rest
        .iter()
        .filter(|i| i.event.instance_id == other.id)
        .collect();
    assert_eq!(theirs.len(), 1, "{rest:?}");
    assert_eq!(theirs[0].sequence, 1);

    // Ids: `evt_` and 32 hex digits, all distinct, and the same when claimed again.
    let all: Vec<&OutboxItem> = first.iter().chain(&rest).collect();
    let ids: BTreeSet<&str> = all.iter().map(|i| i.event_id.as_str()).collect();
    assert_eq!(ids.len(), all.len(), "{ids:?}");
    for id in &ids {
        let hex = id.strip_prefix("evt_").expect("evt_ prefix");
        assert_eq!(hex.len(), 32, "{id}");
        assert!(hex.chars().all(|c| c.is_ascii_hexdigit()), "{id}");
    }
    let again = claim(&*store, t2 + TimeDelta::seconds(61)).await;
    let again_ids: BTreeSet<&str> = again.iter().map(|i| i.event_id.as_str()).collect();
    let rest_ids: BTreeSet<&str> = rest.iter().map(|i| i.event_id.as_str()).collect();
    assert_eq!(again_ids, rest_ids, "redelivery keeps the ids");
}

async fn case_marks_are_fenced_by_the_lease<S: ContractStore>(store: Arc<S>) {
    let t0 = at(15, 0, 0);
    let instance = start(&*store, CANCELLATION, "booking", 2, 3, t0)
        .await
        .unwrap();
    let claimed = claim(&*store, t0).await;
    assert_eq!(claimed.len(), 1, "{claimed:?}");
    let old = claimed[0].lease();

    // The lease ran out (t0 + 60 s): its holder can mark nothing any more.
    let late = t0 + TimeDelta::seconds(60);
    assert_eq!(delivered(&*store, &claimed, late).await, 0);
    let failure = |lease: Lease, now: DateTime<Utc>| FailedDelivery {
        lease,
        error: "late".to_owned(),
        retry_at: now + TimeDelta::seconds(5),
    };
    assert_eq!(
        store
            .mark_callbacks_failed(vec![failure(old, late)], late)
            .await
            .unwrap(),
        0
    );
    // Another claim holds it now; the old holder's marks still change nothing.
    let reclaimed = claim(&*store, late).await;
    assert_eq!(reclaimed.len(), 1);
    assert_eq!(reclaimed[0].id, old.id);
    assert_eq!(reclaimed[0].attempts, old.attempts + 1);
    let t1 = late + TimeDelta::seconds(1);
    assert_eq!(delivered(&*store, &claimed, t1).await, 0);
    assert_eq!(
        store
            .mark_callbacks_failed(vec![failure(old, t1)], t1)
            .await
            .unwrap(),
        0
    );
    // Still leased to the new holder: nobody else claims it.
    assert_eq!(claim(&*store, t1).await, vec![]);
    // The holder's mark counts, once.
    assert_eq!(delivered(&*store, &reclaimed, t1).await, 1);
    assert_eq!(delivered(&*store, &reclaimed, t1).await, 0);
    assert_eq!(claim(&*store, t1 + TimeDelta::hours(1)).await, vec![]);

    // One write marks several events; a stale lease among them is left out.
    let t2 = at(16, 0, 0);
    approve(&*store, instance.steps[0].id, 1, None, t2)
        .await
        .unwrap();
    reject(&*store, instance.steps[1].id, 2, "no", t2)
        .await
        .unwrap();
    let batch = claim(&*store, t2).await;
    assert_eq!(batch.len(), 2, "{batch:?}");
    let mut stale = batch.clone();
    stale[1].attempts -= 1;
    assert_eq!(delivered(&*store, &stale, t2).await, 1);
    let left = claim(&*store, t2 + TimeDelta::seconds(60)).await;
    assert_eq!(left.len(), 1, "{left:?}");
    assert_eq!(left[0].id, batch[1].id);
}

async fn case_outbox_claims_leases_and_retries<S: ContractStore>(store: Arc<S>) {
    let booking = start(&*store, CANCELLATION, "booking", 1, 3, at(15, 0, 0))
        .await
        .unwrap();
    let (s1, s2) = step_ids(&booking);
    approve(&*store, s1, 1, None, at(15, 1, 0)).await.unwrap();
    // The two step notifications, delivered.
    let notifications = claim(&*store, at(15, 1, 0)).await;
    assert_eq!(notifications.len(), 2, "{notifications:?}");
    assert_eq!(delivered(&*store, &notifications, at(15, 1, 0)).await, 2);

    let t2 = at(15, 2, 0);
    approve(&*store, s2, 2, Some("refund approved"), t2)
        .await
        .unwrap();
    let approved_event = CallbackEvent {
        kind: CallbackKind::OnApproved,
        instance_id: booking.id,
        event: event(CANCELLATION),
        entity_type: entity_type("booking"),
        entity_id: booking.entity_id,
        status: InstanceStatus::Approved,
        step: None,
        decided_by: Some(uid(2)),
        comment: Some("refund approved".to_owned()),
        at: t2,
    };

    let lease = t2 + TimeDelta::seconds(60);
    let claimed = store.claim_callbacks(t2, lease, 10, None).await.unwrap();
    assert_eq!(
        claimed.len(),
        1,
        "exactly one event per ended instance: {claimed:?}"
    );
    let id = claimed[0].id;
    assert_eq!(claimed[0].attempts, 1);
    assert_eq!(claimed[0].event, approved_event);

    // Leased: nobody else gets it before the lease ends.
    assert_eq!(
        store
            .claim_callbacks(
                t2 + TimeDelta::seconds(30),
                lease + TimeDelta::seconds(30),
                10,
                None
            )
            .await
            .unwrap(),
        vec![]
    );

    // A failed delivery comes due again at retry_at, not before, with its reason kept.
    let retry_at = t2 + TimeDelta::seconds(120);
    let failed = FailedDelivery {
        lease: claimed[0].lease(),
        error: "x".to_owned(),
        retry_at,
    };
    assert_eq!(
        store.mark_callbacks_failed(vec![failed], t2).await.unwrap(),
        1
    );
    assert_eq!(
        store
            .claim_callbacks(
                retry_at - TimeDelta::seconds(1),
                retry_at + TimeDelta::seconds(60),
                10,
                None
            )
            .await
            .unwrap(),
        vec![]
    );
    let retried = store
        .claim_callbacks(retry_at, retry_at + TimeDelta::seconds(60), 10, None)
        .await
        .unwrap();
    assert_eq!(retried.len(), 1, "{retried:?}");
    assert_eq!(retried[0].id, id);
    assert_eq!(retried[0].attempts, 2);
    assert_eq!(retried[0].event, approved_event);
    assert_eq!(retried[0].event_id, claimed[0].event_id);

    // Delivered: never claimed again.
    assert_eq!(delivered(&*store, &retried, retry_at).await, 1);
    assert_eq!(claim(&*store, retry_at + TimeDelta::days(2)).await, vec![]);

    // A rejection stores one on_rejected event (after the trigger's notification).
    let other = start(&*store, CANCELLATION, "booking", 2, 3, at(15, 10, 0))
        .await
        .unwrap();
    let t3 = at(15, 11, 0);
    reject(&*store, other.steps[0].id, 1, "duplicate request", t3)
        .await
        .unwrap();
    let claimed = store
        .claim_callbacks(t3, t3 + TimeDelta::seconds(60), 10, None)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 2, "{claimed:?}");
    assert_eq!(claimed[0].event.kind, CallbackKind::StepAwaitingAction);
    assert_eq!(claimed[1].attempts, 1);
    assert_eq!(claimed[1].sequence, 2);
    assert_eq!(
        claimed[1].event,
        CallbackEvent {
            kind: CallbackKind::OnRejected,
            instance_id: other.id,
            event: event(CANCELLATION),
            entity_type: entity_type("booking"),
            entity_id: other.entity_id,
            status: InstanceStatus::Rejected,
            step: None,
            decided_by: Some(uid(1)),
            comment: Some("duplicate request".to_owned()),
            at: t3,
        }
    );
    // Neither delivered nor failed: they come due again when their lease ends (at-least-once).
    let lease_end = t3 + TimeDelta::seconds(60);
    let again = store
        .claim_callbacks(lease_end, lease_end + TimeDelta::seconds(60), 10, None)
        .await
        .unwrap();
    assert_eq!(again.len(), 2, "{again:?}");
    assert_eq!(again[1].id, claimed[1].id);
    assert_eq!(again[1].attempts, 2);
    assert_eq!(again[1].event, claimed[1].event);
    assert_eq!(delivered(&*store, &again, lease_end).await, 2);
    assert_eq!(claim(&*store, lease_end + TimeDelta::days(2)).await, vec![]);

    // The limit is honoured; the rest stay claimable.
    let mut ended = BTreeSet::new();
    for entity in 1..=3 {
        let instance = start(&*store, COMMISSION, "commission", entity, 3, at(16, 0, 0))
            .await
            .unwrap();
        reject(&*store, instance.steps[0].id, 2, "too high", at(16, 1, 0))
            .await
            .unwrap();
        ended.insert(instance.id);
    }
    let now = at(16, 2, 0);
    let lease = now + TimeDelta::seconds(60);
    let first = store.claim_callbacks(now, lease, 4, None).await.unwrap();
    assert_eq!(first.len(), 4, "{first:?}");
    let rest = store.claim_callbacks(now, lease, 4, None).await.unwrap();
    assert_eq!(rest.len(), 2, "{rest:?}");
    assert_eq!(
        store.claim_callbacks(now, lease, 4, None).await.unwrap(),
        vec![]
    );
    let claimed: Vec<_> = first
        .iter()
        .chain(&rest)
        .filter(|c| c.event.kind == CallbackKind::OnRejected)
        .collect();
    let ids: BTreeSet<i64> = claimed.iter().map(|c| c.id).collect();
    assert_eq!(ids.len(), 3, "distinct events");
    let instances: BTreeSet<InstanceId> = claimed.iter().map(|c| c.event.instance_id).collect();
    assert_eq!(instances, ended);
    for item in &claimed {
        assert_eq!(item.attempts, 1);
        assert_eq!(item.sequence, 2);
        assert_eq!(item.event.comment.as_deref(), Some("too high"));
    }
}

/// With `due_since`, a claim takes only the events that came due at or after it (the bound
/// itself included), whatever came due before stays for a claim over the whole queue; a retry
/// comes due at its `retry_at`, so a recent claim takes it then.
async fn case_a_recent_claim_takes_only_what_came_due_since<S: ContractStore>(store: Arc<S>) {
    // Three triggers, one step.awaiting_action each, due at 10:00, 10:05 and 10:10.
    let mut ids = Vec::new();
    for (entity, minute) in [(1, 0), (2, 5), (3, 10)] {
        let instance = start(
            &*store,
            COMMISSION,
            "commission",
            entity,
            3,
            at(10, minute, 0),
        )
        .await
        .unwrap();
        ids.push(instance.id);
    }
    let now = at(10, 20, 0);
    let lease = now + TimeDelta::seconds(60);
    let recent = store
        .claim_callbacks(now, lease, 10, Some(at(10, 5, 0)))
        .await
        .unwrap();
    let instances: Vec<InstanceId> = recent.iter().map(|c| c.event.instance_id).collect();
    assert_eq!(instances, vec![ids[1], ids[2]], "{recent:?}");
    // Nothing else came due since: the old one is left to a claim over the whole queue.
    assert_eq!(
        store
            .claim_callbacks(now, lease, 10, Some(at(10, 5, 0)))
            .await
            .unwrap(),
        vec![]
    );
    let whole = store.claim_callbacks(now, lease, 10, None).await.unwrap();
    assert_eq!(whole.len(), 1, "{whole:?}");
    assert_eq!(whole[0].event.instance_id, ids[0]);

    // A failed delivery comes due again at its retry_at: a recent claim after it takes it.
    let retry_at = at(10, 30, 0);
    let failed = FailedDelivery {
        lease: whole[0].lease(),
        error: "down".to_owned(),
        retry_at,
    };
    assert_eq!(
        store
            .mark_callbacks_failed(vec![failed], now)
            .await
            .unwrap(),
        1
    );
    let later = retry_at + TimeDelta::seconds(5);
    let retried = store
        .claim_callbacks(
            later,
            later + TimeDelta::seconds(60),
            10,
            Some(later - TimeDelta::seconds(10)),
        )
        .await
        .unwrap();
    assert_eq!(retried.len(), 1, "{retried:?}");
    assert_eq!(retried[0].id, whole[0].id);
    assert_eq!(retried[0].attempts, 2);
}
