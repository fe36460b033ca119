//! Contract: the callback outbox holds one event per ended instance, claimed under a lease,
//! retried when due, never claimed again once delivered.

use std::collections::BTreeSet;
use std::sync::Arc;

use approvals::domain::model::{CallbackEvent, CallbackKind, InstanceId};
use chrono::TimeDelta;

use super::{ContractStore, approve, assert_no_callbacks, reject, start, step_ids};
use crate::fixtures::{CANCELLATION, COMMISSION, at, entity_type, event, uid};

contract_tests! {
    case_outbox_claims_leases_and_retries =>
        memory_outbox_claims_leases_and_retries, postgres_outbox_claims_leases_and_retries;
}

async fn case_outbox_claims_leases_and_retries<S: ContractStore>(store: Arc<S>) {
    let booking = start(&*store, CANCELLATION, "booking", 1, 3, at(15, 0, 0))
        .await
        .unwrap();
    let (s1, s2) = step_ids(&booking);
    approve(&*store, s1, 1, None, at(15, 1, 0)).await.unwrap();
    assert_no_callbacks(&*store).await;

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
        decided_by: uid(2),
        comment: Some("refund approved".to_owned()),
        at: t2,
    };

    let lease = t2 + TimeDelta::seconds(60);
    let claimed = store.claim_callbacks(t2, lease, 10).await.unwrap();
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
                10
            )
            .await
            .unwrap(),
        vec![]
    );

    // A failed delivery comes due again at retry_at, not before.
    let retry_at = t2 + TimeDelta::seconds(120);
    store
        .mark_callback_failed(id, "x".to_owned(), retry_at)
        .await
        .unwrap();
    assert_eq!(
        store
            .claim_callbacks(
                retry_at - TimeDelta::seconds(1),
                retry_at + TimeDelta::seconds(60),
                10
            )
            .await
            .unwrap(),
        vec![]
    );
    let retried = store
        .claim_callbacks(retry_at, retry_at + TimeDelta::seconds(60), 10)
        .await
        .unwrap();
    assert_eq!(retried.len(), 1, "{retried:?}");
    assert_eq!(retried[0].id, id);
    assert_eq!(retried[0].attempts, 2);
    assert_eq!(retried[0].event, approved_event);

    // Delivered: never claimed again.
    store.mark_callback_delivered(id, retry_at).await.unwrap();
    assert_no_callbacks(&*store).await;

    // A rejection stores one on_rejected event.
    let other = start(&*store, CANCELLATION, "booking", 2, 3, at(15, 10, 0))
        .await
        .unwrap();
    let t3 = at(15, 11, 0);
    reject(&*store, other.steps[0].id, 1, "duplicate request", t3)
        .await
        .unwrap();
    let claimed = store
        .claim_callbacks(t3, t3 + TimeDelta::seconds(60), 10)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1, "{claimed:?}");
    assert_ne!(claimed[0].id, id);
    assert_eq!(claimed[0].attempts, 1);
    assert_eq!(
        claimed[0].event,
        CallbackEvent {
            kind: CallbackKind::OnRejected,
            instance_id: other.id,
            event: event(CANCELLATION),
            entity_type: entity_type("booking"),
            entity_id: other.entity_id,
            decided_by: uid(1),
            comment: Some("duplicate request".to_owned()),
            at: t3,
        }
    );
    // Neither delivered nor failed: it comes due again when its lease ends (at-least-once).
    let lease_end = t3 + TimeDelta::seconds(60);
    let again = store
        .claim_callbacks(lease_end, lease_end + TimeDelta::seconds(60), 10)
        .await
        .unwrap();
    assert_eq!(again.len(), 1, "{again:?}");
    assert_eq!(again[0].id, claimed[0].id);
    assert_eq!(again[0].attempts, 2);
    assert_eq!(again[0].event, claimed[0].event);
    store
        .mark_callback_delivered(claimed[0].id, lease_end)
        .await
        .unwrap();
    assert_no_callbacks(&*store).await;

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
    let first = store.claim_callbacks(now, lease, 2).await.unwrap();
    assert_eq!(first.len(), 2, "{first:?}");
    let rest = store.claim_callbacks(now, lease, 2).await.unwrap();
    assert_eq!(rest.len(), 1, "{rest:?}");
    assert_eq!(store.claim_callbacks(now, lease, 2).await.unwrap(), vec![]);
    let claimed: Vec<_> = first.iter().chain(&rest).collect();
    let ids: BTreeSet<i64> = claimed.iter().map(|c| c.id).collect();
    assert_eq!(ids.len(), 3, "distinct events");
    let instances: BTreeSet<InstanceId> = claimed.iter().map(|c| c.event.instance_id).collect();
    assert_eq!(instances, ended);
    for item in &claimed {
        assert_eq!(item.attempts, 1);
        assert_eq!(item.event.kind, CallbackKind::OnRejected);
        assert_eq!(item.event.comment.as_deref(), Some("too high"));
    }
}
