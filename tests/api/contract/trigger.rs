//! Contract: triggering stores an instance with its steps and audit, all or nothing, and only
//! one active instance per (event, entity_type, entity_id).

use approvals::domain::model::Done;
use std::collections::BTreeSet;
use std::sync::Arc;

use approvals::domain::WorkflowError;
use approvals::domain::model::{AuditAction, InstanceId, InstanceStatus, StepStatus};
use serde_json::json;

use super::{
    ContractStore, assert_audit_well_formed, audit_summary, new_instance, pending_line, reject,
    start, step_ids,
};
use crate::fixtures::{
    CANCELLATION, PRICE_UPDATE, at, by_role, by_user, entity_type, event, request, step, template,
    tid, uid,
};

contract_tests! {
    case_create_then_read => memory_create_then_read, postgres_create_then_read;
    case_one_active_instance_per_entity =>
        memory_one_active_instance_per_entity, postgres_one_active_instance_per_entity;
}

async fn case_create_then_read<S: ContractStore>(store: Arc<S>) {
    let t0 = at(9, 0, 0);
    let context = json!({
        "reason": "customer relocating",
        "refund_cents": 125_000,
        "ratio": 0.25,
        "tags": ["urgent", "vip"],
        "nested": {"ok": true, "note": null, "list": [1, {"deep": "yes"}]},
        "text": "naïve café ✓"
    });
    let new = new_instance(
        &*store,
        request(CANCELLATION, "booking", 7, 3, Some(context.clone())),
        t0,
    )
    .await;
    let created = store
        .create_instance(new, None)
        .await
        .and_then(Done::unkeyed)
        .unwrap();

    assert_eq!(created.template_id, tid(1));
    assert_eq!(created.template_version, 1);
    assert_eq!(created.event, event(CANCELLATION));
    assert_eq!(created.entity_type, entity_type("booking"));
    assert_eq!(created.entity_id.get(), 7);
    assert_eq!(created.initiated_by, uid(3));
    assert_eq!(created.status, InstanceStatus::InProgress);
    assert_eq!(created.context, Some(context.clone()));
    assert_eq!(created.created_at, t0);
    assert_eq!(created.updated_at, t0);
    assert_eq!(created.completed_at, None);

    let orders: Vec<i32> = created.steps.iter().map(|s| s.step_order).collect();
    assert_eq!(orders, vec![1, 2]);
    let (s1, s2) = step_ids(&created);
    assert_ne!(s1, s2);
    let first = &created.steps[0];
    assert_eq!(first.name, "Sales manager review");
    assert_eq!(first.approver, by_role("sales_manager"));
    assert_eq!(first.eligible_user_ids, vec![uid(1)]);
    assert_eq!(first.status, StepStatus::AwaitingAction);
    assert_eq!(first.activated_at, Some(t0));
    assert_eq!(first.acted_by_user_id, None);
    assert_eq!(first.comment, None);
    assert_eq!(first.acted_at, None);
    let second = &created.steps[1];
    assert_eq!(second.name, "Finance manager approval");
    assert_eq!(second.approver, by_role("finance_manager"));
    assert_eq!(second.eligible_user_ids, vec![uid(2)]);
    assert_eq!(second.status, StepStatus::Pending);
    assert_eq!(second.activated_at, None);
    assert_eq!(second.acted_by_user_id, None);

    assert_eq!(
        audit_summary(&created),
        vec![
            (AuditAction::InstanceCreated, None, Some(uid(3))),
            (AuditAction::StepActivated, Some(s1), None),
        ]
    );
    assert_audit_well_formed(&created);
    assert!(
        created
            .audit
            .iter()
            .all(|a| a.at == t0 && a.comment.is_none())
    );

    let read = store.instance(created.id).await.unwrap();
    assert_eq!(
        read, created,
        "instance(id) returns what create_instance returned"
    );

    // A template with a direct-user step, and no context.
    let t1 = at(9, 5, 0);
    let unit = start(&*store, PRICE_UPDATE, "unit", 4, 1, t1)
        .await
        .unwrap();
    assert_ne!(unit.id, created.id);
    assert_eq!(unit.template_id, tid(2));
    assert_eq!(unit.context, None);
    assert_eq!(unit.steps[1].approver, by_user(2));
    assert_eq!(unit.steps[1].eligible_user_ids, vec![uid(2)]);
    let (u1, _) = step_ids(&unit);
    assert!(
        ![s1, s2].contains(&u1),
        "step ids are unique across instances"
    );
    assert!(
        unit.audit[0].id > created.audit[1].id,
        "audit ids increase across instances"
    );
    assert_eq!(store.instance(unit.id).await.unwrap(), unit);
    // Reading one instance never mixes in another's steps or audit.
    assert_eq!(store.instance(created.id).await.unwrap(), created);

    let unknown = InstanceId::new(created.id.get() + 1_000).unwrap();
    assert!(
        matches!(
            store.instance(unknown).await,
            Err(WorkflowError::NotFound { .. })
        ),
        "unknown instance id"
    );
}

async fn case_one_active_instance_per_entity<S: ContractStore>(store: Arc<S>) {
    // A second event on bookings, to show the rule is per event.
    store
        .put_template(template(
            10,
            "Booking refund",
            "booking.refund_requested",
            "booking",
            true,
            vec![step(1, "Finance review", by_role("finance_manager"))],
        ))
        .await;

    let first = start(&*store, CANCELLATION, "booking", 1, 3, at(9, 0, 0))
        .await
        .unwrap();
    let again = start(&*store, CANCELLATION, "booking", 1, 3, at(9, 1, 0)).await;
    assert_eq!(
        again.unwrap_err(),
        WorkflowError::InstanceAlreadyActive {
            existing: first.id.get()
        }
    );
    // The refused creation wrote nothing: the sales manager's inbox holds one step.
    assert_eq!(
        store.pending_steps(uid(1), 50, None).await.unwrap(),
        vec![pending_line(&first, 1)]
    );

    let other_entity = start(&*store, CANCELLATION, "booking", 2, 3, at(9, 2, 0))
        .await
        .unwrap();
    let other_event = start(
        &*store,
        "booking.refund_requested",
        "booking",
        1,
        3,
        at(9, 3, 0),
    )
    .await
    .unwrap();
    let other_type = start(&*store, PRICE_UPDATE, "unit", 1, 3, at(9, 4, 0))
        .await
        .unwrap();
    let ids: BTreeSet<InstanceId> = [first.id, other_entity.id, other_event.id, other_type.id]
        .into_iter()
        .collect();
    assert_eq!(ids.len(), 4, "each accepted instance has its own id");

    // Once the first instance has ended, the entity may be triggered again, once.
    let ended = reject(&*store, first.steps[0].id, 1, "not eligible", at(9, 10, 0))
        .await
        .unwrap();
    assert_eq!(ended.status, InstanceStatus::Rejected);
    let renewed = start(&*store, CANCELLATION, "booking", 1, 3, at(9, 11, 0))
        .await
        .unwrap();
    assert!(!ids.contains(&renewed.id));
    assert_eq!(renewed.status, InstanceStatus::InProgress);
    assert_eq!(
        start(&*store, CANCELLATION, "booking", 1, 3, at(9, 12, 0))
            .await
            .unwrap_err(),
        WorkflowError::InstanceAlreadyActive {
            existing: renewed.id.get()
        }
    );
    // The ended instance stays as it was.
    assert_eq!(store.instance(first.id).await.unwrap(), ended);
}
