//! Contract: cancelling an instance (`decide_instance` running `machine::cancel`) ends it with
//! its open steps, records who and why in the audit and the outbox, empties the inbox, and
//! refuses a stranger or an ended instance without writing anything.

use approvals::domain::model::Done;
use std::sync::Arc;

use approvals::domain::WorkflowError;
use approvals::domain::machine;
use approvals::domain::model::{
    AuditAction, CallbackEvent, CallbackKind, CancelRequest, Comment, Instance, InstanceId,
    InstanceStatus, StepStatus,
};
use chrono::{DateTime, TimeDelta, Utc};

use super::{
    ContractStore, approve, assert_audit_well_formed, assert_no_callbacks, audit_summary, reject,
    start, step_ids,
};
use crate::fixtures::{CANCELLATION, at, entity_type, event, far_future, uid};

contract_tests! {
    case_the_initiator_cancels_an_active_instance =>
        memory_the_initiator_cancels_an_active_instance,
        postgres_the_initiator_cancels_an_active_instance;
    case_cancel_keeps_decided_steps_and_refuses_ended_instances =>
        memory_cancel_keeps_decided_steps_and_refuses_ended_instances,
        postgres_cancel_keeps_decided_steps_and_refuses_ended_instances;
}

/// What the service hands the store for a cancellation: the machine's, on the locked state.
async fn cancel<S: ContractStore>(
    store: &S,
    instance: InstanceId,
    by: i64,
    reason: Option<&str>,
    now: DateTime<Utc>,
) -> Result<Instance, WorkflowError> {
    let request = CancelRequest {
        instance_id: instance,
        acted_by: uid(by),
        reason: reason.map(|r| Comment::new(r).unwrap()),
    };
    store
        .decide_instance(
            instance,
            Box::new(move |locked: &Instance| machine::cancel(locked, &request, now)),
            None,
        )
        .await
        .and_then(Done::unkeyed)
}

fn statuses(instance: &Instance) -> Vec<StepStatus> {
    instance.steps.iter().map(|s| s.status).collect()
}

async fn case_the_initiator_cancels_an_active_instance<S: ContractStore>(store: Arc<S>) {
    let t0 = at(16, 0, 0);
    let created = start(&*store, CANCELLATION, "booking", 4, 3, t0)
        .await
        .unwrap();
    let (s1, s2) = step_ids(&created);
    assert_eq!(
        store.pending_steps(uid(1), 50, None).await.unwrap().len(),
        1
    );

    // Refusals write nothing: an approver is not the initiator, an unknown id is not found.
    assert_eq!(
        cancel(&*store, created.id, 1, Some("not mine"), at(16, 1, 0))
            .await
            .unwrap_err(),
        WorkflowError::NotTheInitiator {
            user: uid(1),
            instance: created.id.get()
        }
    );
    let unknown = InstanceId::new(created.id.get() + 10_000).unwrap();
    assert!(
        matches!(
            cancel(&*store, unknown, 3, None, at(16, 1, 0)).await,
            Err(WorkflowError::NotFound { .. })
        ),
        "unknown instance id"
    );
    assert_eq!(store.instance(created.id).await.unwrap(), created);
    assert_no_callbacks(&*store).await;

    let t1 = at(16, 2, 0);
    let cancelled = cancel(&*store, created.id, 3, Some("Customer stays"), t1)
        .await
        .unwrap();
    assert_eq!(cancelled.status, InstanceStatus::Cancelled);
    assert_eq!(cancelled.updated_at, t1);
    assert_eq!(cancelled.completed_at, Some(t1));
    assert_eq!(cancelled.created_at, t0);
    assert_eq!(
        statuses(&cancelled),
        vec![StepStatus::Cancelled, StepStatus::Cancelled]
    );
    for step in &cancelled.steps {
        assert_eq!(
            (
                step.acted_by_user_id,
                step.acted_at,
                step.comment.as_deref()
            ),
            (None, None, None),
            "a cancelled step was decided by nobody"
        );
    }
    assert_eq!(cancelled.steps[0].activated_at, Some(t0));
    assert_eq!(cancelled.steps[1].activated_at, None);
    assert_eq!(
        audit_summary(&cancelled),
        vec![
            (AuditAction::InstanceCreated, None, Some(uid(3))),
            (AuditAction::StepActivated, Some(s1), None),
            (AuditAction::InstanceCancelled, None, Some(uid(3))),
        ]
    );
    let entry = cancelled.audit.last().unwrap();
    assert_eq!(entry.comment.as_deref(), Some("Customer stays"));
    assert_eq!(entry.at, t1);
    assert_audit_well_formed(&cancelled);
    // What the store answered is what it stored.
    assert_eq!(store.instance(created.id).await.unwrap(), cancelled);

    // The cancelled steps left the inbox.
    assert_eq!(store.pending_steps(uid(1), 50, None).await.unwrap(), vec![]);
    assert_eq!(store.pending_steps(uid(2), 50, None).await.unwrap(), vec![]);

    // One outcome event, on_cancelled, by the initiator with the reason.
    let claimed = store
        .claim_callbacks(
            far_future(),
            far_future() + TimeDelta::seconds(60),
            10,
            None,
        )
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1, "{claimed:?}");
    assert_eq!(
        claimed[0].event,
        CallbackEvent {
            kind: CallbackKind::OnCancelled,
            instance_id: created.id,
            event: event(CANCELLATION),
            entity_type: entity_type("booking"),
            entity_id: created.entity_id,
            status: InstanceStatus::Cancelled,
            step: None,
            decided_by: Some(uid(3)),
            comment: Some("Customer stays".to_owned()),
            at: t1,
        }
    );

    // A second cancellation and a late approval are refused, and write nothing.
    assert_eq!(
        cancel(&*store, created.id, 3, None, at(16, 3, 0))
            .await
            .unwrap_err(),
        WorkflowError::InstanceNotActive {
            instance: created.id.get(),
            status: InstanceStatus::Cancelled
        }
    );
    assert_eq!(
        approve(&*store, s1, 1, None, at(16, 3, 0))
            .await
            .unwrap_err(),
        WorkflowError::StepNotActionable {
            step: s1.get(),
            status: StepStatus::Cancelled
        }
    );
    assert!(
        matches!(
            approve(&*store, s2, 2, None, at(16, 3, 0)).await,
            Err(WorkflowError::StepNotActionable { .. })
        ),
        "step 2 was cancelled"
    );
    assert_eq!(store.instance(created.id).await.unwrap(), cancelled);

    // The entity is free again.
    let again = start(&*store, CANCELLATION, "booking", 4, 3, at(16, 4, 0))
        .await
        .unwrap();
    assert_ne!(again.id, created.id);
}

async fn case_cancel_keeps_decided_steps_and_refuses_ended_instances<S: ContractStore>(
    store: Arc<S>,
) {
    // Cancelled at step 2: step 1 keeps its approval.
    let created = start(&*store, CANCELLATION, "booking", 5, 3, at(17, 0, 0))
        .await
        .unwrap();
    let (s1, _) = step_ids(&created);
    let after_first = approve(&*store, s1, 1, Some("fine"), at(17, 1, 0))
        .await
        .unwrap();
    assert_eq!(
        store.pending_steps(uid(2), 50, None).await.unwrap().len(),
        1
    );
    let cancelled = cancel(&*store, created.id, 3, None, at(17, 2, 0))
        .await
        .unwrap();
    assert_eq!(
        statuses(&cancelled),
        vec![StepStatus::Approved, StepStatus::Cancelled]
    );
    assert_eq!(cancelled.steps[0], after_first.steps[0]);
    assert_eq!(cancelled.audit.last().unwrap().comment, None);
    assert_eq!(store.pending_steps(uid(2), 50, None).await.unwrap(), vec![]);

    // Approved and rejected instances have ended: refused, nothing written.
    let approved = start(&*store, CANCELLATION, "booking", 6, 3, at(17, 10, 0))
        .await
        .unwrap();
    let (a1, a2) = step_ids(&approved);
    approve(&*store, a1, 1, None, at(17, 11, 0)).await.unwrap();
    let approved = approve(&*store, a2, 2, None, at(17, 12, 0)).await.unwrap();
    let rejected = start(&*store, CANCELLATION, "booking", 7, 3, at(17, 20, 0))
        .await
        .unwrap();
    let rejected = reject(&*store, rejected.steps[0].id, 1, "no", at(17, 21, 0))
        .await
        .unwrap();
    for ended in [approved, rejected] {
        assert_eq!(
            cancel(&*store, ended.id, 3, Some("too late"), at(17, 30, 0))
                .await
                .unwrap_err(),
            WorkflowError::InstanceNotActive {
                instance: ended.id.get(),
                status: ended.status
            }
        );
        assert_eq!(store.instance(ended.id).await.unwrap(), ended);
    }
    let kinds: Vec<CallbackKind> = store
        .claim_callbacks(
            far_future(),
            far_future() + TimeDelta::seconds(60),
            100,
            None,
        )
        .await
        .unwrap()
        .into_iter()
        .map(|item| item.event.kind)
        .filter(|kind| *kind != CallbackKind::StepAwaitingAction)
        .collect();
    assert_eq!(
        kinds
            .iter()
            .filter(|k| **k == CallbackKind::OnCancelled)
            .count(),
        1,
        "{kinds:?}"
    );
    assert_eq!(kinds.len(), 3, "one event per ended instance: {kinds:?}");
}
