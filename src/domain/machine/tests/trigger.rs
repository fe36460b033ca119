//! Tests of `machine::trigger` (domain core): how a template and role snapshots become a new
//! instance, and every refusal on the way.

use serde_json::json;

use super::fixtures::{
    assert_validation, audit_entry, now, role, template, trigger_request, uid, user,
};
use crate::domain::error::WorkflowError;
use crate::domain::machine::trigger;
use crate::domain::model::{
    AuditAction, EntityId, EntityType, InstanceStatus, NewStep, StepStatus, TemplateId,
};

#[test]
fn trigger_activates_step_one_and_leaves_the_rest_pending() {
    let new = trigger(
        &template(),
        trigger_request(),
        vec![vec![1, 4].into_iter().map(uid).collect(), vec![uid(2)]],
        now(),
    )
    .unwrap();

    assert_eq!(new.template_id, TemplateId::new(7).unwrap());
    assert_eq!(new.template_version, 3);
    assert_eq!(new.event.as_str(), "booking.cancellation_requested");
    assert_eq!(new.entity_type.as_str(), "booking");
    assert_eq!(new.entity_id, EntityId::new(42).unwrap());
    assert_eq!(new.initiated_by, uid(3));
    assert_eq!(new.status, InstanceStatus::InProgress);
    assert_eq!(new.context, Some(json!({"reason": "customer request"})));
    assert_eq!(new.created_at, now());

    assert_eq!(
        new.steps,
        vec![
            NewStep {
                step_order: 1,
                name: "Sales review".to_owned(),
                approver: role("sales_manager"),
                eligible_user_ids: vec![uid(1), uid(4)],
                status: StepStatus::AwaitingAction,
                activated_at: Some(now()),
                due: None,
                due_at: None,
                quorum: 1,
            },
            NewStep {
                step_order: 2,
                name: "Finance sign-off".to_owned(),
                approver: user(2),
                eligible_user_ids: vec![uid(2)],
                status: StepStatus::Pending,
                activated_at: None,
                due: None,
                due_at: None,
                quorum: 1,
            },
        ]
    );
}

#[test]
fn trigger_audits_creation_then_activation_of_step_one() {
    let new = trigger(
        &template(),
        trigger_request(),
        vec![vec![uid(1)], vec![uid(2)]],
        now(),
    )
    .unwrap();

    assert_eq!(
        new.audit,
        vec![
            audit_entry(None, AuditAction::InstanceCreated, Some(3), None),
            audit_entry(Some(1), AuditAction::StepActivated, None, None),
        ]
    );
}

#[test]
fn trigger_sorts_and_deduplicates_snapshots() {
    let new = trigger(
        &template(),
        trigger_request(),
        vec![
            vec![uid(9), uid(1), uid(4), uid(1), uid(9)],
            vec![uid(2), uid(2)],
        ],
        now(),
    )
    .unwrap();

    assert_eq!(new.steps[0].eligible_user_ids, vec![uid(1), uid(4), uid(9)]);
    assert_eq!(new.steps[1].eligible_user_ids, vec![uid(2)]);
}

#[test]
fn trigger_refuses_an_inactive_template() {
    let mut template = template();
    template.is_active = false;

    let err = trigger(
        &template,
        trigger_request(),
        vec![vec![uid(1)], vec![uid(2)]],
        now(),
    )
    .unwrap_err();

    assert_eq!(
        err,
        WorkflowError::NoActiveTemplate {
            event: "booking.cancellation_requested".to_owned(),
        }
    );
}

#[test]
fn trigger_refuses_an_entity_type_the_template_does_not_cover() {
    let mut request = trigger_request();
    request.entity_type = EntityType::new("unit").unwrap();

    let err = trigger(
        &template(),
        request,
        vec![vec![uid(1)], vec![uid(2)]],
        now(),
    )
    .unwrap_err();

    assert_validation(err, "entity_type");
}

#[test]
fn trigger_refuses_a_role_step_that_resolves_to_nobody() {
    let err = trigger(
        &template(),
        trigger_request(),
        vec![vec![], vec![uid(2)]],
        now(),
    )
    .unwrap_err();

    assert_eq!(
        err,
        WorkflowError::NoEligibleApprover {
            approver: "role 'sales_manager'".to_owned(),
            step_order: 1,
        }
    );
}

#[test]
fn trigger_refuses_a_user_step_that_resolves_to_nobody() {
    let err = trigger(
        &template(),
        trigger_request(),
        vec![vec![uid(1)], vec![]],
        now(),
    )
    .unwrap_err();

    assert_eq!(
        err,
        WorkflowError::NoEligibleApprover {
            approver: "user 2".to_owned(),
            step_order: 2,
        }
    );
}

#[test]
fn trigger_refuses_a_snapshot_count_that_does_not_match_the_steps() {
    let err = trigger(&template(), trigger_request(), vec![vec![uid(1)]], now()).unwrap_err();

    assert!(
        matches!(err, WorkflowError::Internal { .. }),
        "expected Internal, got {err:?}"
    );
    // A broken invariant, not a failure of something underneath: nothing to chain.
    assert_eq!(
        err,
        WorkflowError::internal("template 7 has 2 steps, 1 snapshots and 2 conditions")
    );
}

#[test]
fn trigger_events_notify_the_approvers_of_each_awaiting_step() {
    use crate::domain::machine::trigger_events;
    use crate::domain::model::{CallbackKind, EventStep};

    let started = super::fixtures::instance();
    let events = trigger_events(&started);
    assert_eq!(events.len(), 1, "{events:?}");
    let event = &events[0];
    assert_eq!(event.kind, CallbackKind::StepAwaitingAction);
    assert_eq!(event.kind.event_type(), "step.awaiting_action");
    assert_eq!(event.instance_id, started.id);
    assert_eq!(event.status, InstanceStatus::InProgress);
    assert_eq!(event.step, Some(EventStep::of(&started.steps[0])));
    assert_eq!(event.decided_by, Some(started.initiated_by));
    assert_eq!(event.at, started.created_at);

    // Nothing awaits once every step is decided.
    let mut ended = started.clone();
    for step in &mut ended.steps {
        step.status = StepStatus::Approved;
    }
    assert!(trigger_events(&ended).is_empty());
}
