//! Unit tests of the state machine.

use chrono::{DateTime, TimeZone, Utc};
use serde_json::json;

use super::*;
use crate::domain::model::{
    AuditEntry, Comment, EntityId, EntityType, EventName, InstanceId, InstanceStep, RoleName,
    StepId, TemplateId,
};

// ----- fixtures -----

/// The fixed "now" every transition in these tests runs at.
fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 5, 6, 7, 8, 9).unwrap()
}

/// A moment well before `now`, when fixture instances were created.
fn earlier() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 5, 1, 0, 0, 0).unwrap()
}

fn uid(n: i64) -> UserId {
    UserId::new(n).unwrap()
}

fn sid(n: i64) -> StepId {
    StepId::new(n).unwrap()
}

fn role(name: &str) -> Approver {
    Approver::Role {
        role: RoleName::new(name).unwrap(),
    }
}

fn user(n: i64) -> Approver {
    Approver::User { user_id: uid(n) }
}

fn template_step(order: i32, name: &str, approver: Approver) -> TemplateStep {
    TemplateStep {
        step_order: order,
        name: name.to_owned(),
        approver,
    }
}

/// An active template for booking cancellations: role `sales_manager`, then user 2.
fn template() -> Template {
    Template {
        id: TemplateId::new(7).unwrap(),
        name: "Booking cancellation".to_owned(),
        event: EventName::new("booking.cancellation_requested").unwrap(),
        entity_type: EntityType::new("booking").unwrap(),
        version: 3,
        is_active: true,
        steps: vec![
            template_step(1, "Sales review", role("sales_manager")),
            template_step(2, "Finance sign-off", user(2)),
        ],
    }
}

fn trigger_request() -> TriggerRequest {
    TriggerRequest {
        event: EventName::new("booking.cancellation_requested").unwrap(),
        entity_type: EntityType::new("booking").unwrap(),
        entity_id: EntityId::new(42).unwrap(),
        initiated_by: uid(3),
        context: Some(json!({"reason": "customer request"})),
    }
}

fn instance_step(
    id: i64,
    order: i32,
    approver: Approver,
    eligible: &[i64],
    status: StepStatus,
) -> InstanceStep {
    InstanceStep {
        id: sid(id),
        step_order: order,
        name: format!("Step {order}"),
        approver,
        eligible_user_ids: eligible.iter().copied().map(uid).collect(),
        status,
        acted_by_user_id: None,
        comment: None,
        acted_at: None,
        activated_at: (status == StepStatus::AwaitingAction).then_some(earlier()),
    }
}

/// An in-progress instance (id 10) with step 101 awaiting users 1 or 4 and step 102 pending,
/// for user 2.
fn instance() -> Instance {
    Instance {
        id: InstanceId::new(10).unwrap(),
        template_id: TemplateId::new(7).unwrap(),
        template_version: 3,
        event: EventName::new("booking.cancellation_requested").unwrap(),
        entity_type: EntityType::new("booking").unwrap(),
        entity_id: EntityId::new(42).unwrap(),
        initiated_by: uid(3),
        status: InstanceStatus::InProgress,
        context: None,
        created_at: earlier(),
        updated_at: earlier(),
        completed_at: None,
        steps: vec![
            instance_step(
                101,
                1,
                role("sales_manager"),
                &[1, 4],
                StepStatus::AwaitingAction,
            ),
            instance_step(102, 2, user(2), &[2], StepStatus::Pending),
        ],
        audit: vec![AuditEntry {
            id: 1,
            instance_id: InstanceId::new(10).unwrap(),
            step_id: None,
            action: AuditAction::InstanceCreated,
            actor_user_id: Some(uid(3)),
            comment: None,
            at: earlier(),
        }],
    }
}

/// A three-step instance whose first step (201) awaits user 1; steps 202 and 203 are pending.
fn three_step_instance() -> Instance {
    let mut instance = instance();
    instance.steps = vec![
        instance_step(201, 1, user(1), &[1], StepStatus::AwaitingAction),
        instance_step(202, 2, user(2), &[2], StepStatus::Pending),
        instance_step(
            203,
            3,
            role("finance_manager"),
            &[2, 5],
            StepStatus::Pending,
        ),
    ];
    instance
}

/// `instance()` with step 101 approved, so step 102 awaits user 2: the last step is up.
fn instance_at_last_step() -> Instance {
    let mut instance = instance();
    instance.steps[0].status = StepStatus::Approved;
    instance.steps[0].acted_by_user_id = Some(uid(1));
    instance.steps[0].acted_at = Some(earlier());
    instance.steps[1].status = StepStatus::AwaitingAction;
    instance.steps[1].activated_at = Some(earlier());
    instance
}

fn comment(text: &str) -> Comment {
    Comment::new(text).unwrap()
}

fn approve(step: i64, by: i64, text: Option<&str>) -> DecisionRequest {
    DecisionRequest {
        step_id: sid(step),
        acted_by: uid(by),
        verdict: Verdict::Approve {
            comment: text.map(comment),
        },
    }
}

fn reject(step: i64, by: i64, text: &str) -> DecisionRequest {
    DecisionRequest {
        step_id: sid(step),
        acted_by: uid(by),
        verdict: Verdict::Reject {
            comment: comment(text),
        },
    }
}

fn audit_entry(
    step_order: Option<i32>,
    action: AuditAction,
    actor: Option<i64>,
    comment: Option<&str>,
) -> NewAuditEntry {
    NewAuditEntry {
        step_order,
        action,
        actor_user_id: actor.map(uid),
        comment: comment.map(str::to_owned),
        at: now(),
    }
}

fn assert_validation(err: WorkflowError, expected_field: &str) {
    match err {
        WorkflowError::Validation { field, .. } => assert_eq!(field, expected_field),
        other => panic!("expected a validation error on {expected_field}, got {other:?}"),
    }
}

fn assert_not_actionable(err: WorkflowError, expected_step: i64, expected_status: StepStatus) {
    assert_eq!(
        err,
        WorkflowError::StepNotActionable {
            step: expected_step,
            status: expected_status,
        }
    );
}

// ----- trigger -----

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
            },
            NewStep {
                step_order: 2,
                name: "Finance sign-off".to_owned(),
                approver: user(2),
                eligible_user_ids: vec![uid(2)],
                status: StepStatus::Pending,
                activated_at: None,
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
        matches!(err, WorkflowError::Internal(_)),
        "expected Internal, got {err:?}"
    );
}

// ----- decide: approve -----

#[test]
fn approving_step_one_of_two_activates_step_two() {
    let instance = instance();

    let decided = decide(&instance, &approve(101, 4, Some("looks fine")), now()).unwrap();

    assert_eq!(decided.instance_status, InstanceStatus::InProgress);
    assert_eq!(decided.updated_at, now());
    assert_eq!(decided.completed_at, None);
    assert!(decided.callbacks.is_empty());

    let mut approved = instance.steps[0].clone();
    approved.status = StepStatus::Approved;
    approved.acted_by_user_id = Some(uid(4));
    approved.acted_at = Some(now());
    approved.comment = Some("looks fine".to_owned());
    let mut activated = instance.steps[1].clone();
    activated.status = StepStatus::AwaitingAction;
    activated.activated_at = Some(now());
    assert_eq!(decided.changed_steps, vec![approved, activated]);

    assert_eq!(
        decided.audit,
        vec![
            audit_entry(
                Some(1),
                AuditAction::StepApproved,
                Some(4),
                Some("looks fine")
            ),
            audit_entry(Some(2), AuditAction::StepActivated, None, None),
        ]
    );
}

#[test]
fn approving_without_a_comment_records_none() {
    let decided = decide(&instance(), &approve(101, 1, None), now()).unwrap();

    assert_eq!(decided.changed_steps[0].comment, None);
    assert_eq!(
        decided.audit[0],
        audit_entry(Some(1), AuditAction::StepApproved, Some(1), None)
    );
}

#[test]
fn approving_the_last_step_approves_the_instance() {
    let instance = instance_at_last_step();

    let decided = decide(&instance, &approve(102, 2, Some("ok")), now()).unwrap();

    assert_eq!(decided.instance_status, InstanceStatus::Approved);
    assert_eq!(decided.updated_at, now());
    assert_eq!(decided.completed_at, Some(now()));

    let mut approved = instance.steps[1].clone();
    approved.status = StepStatus::Approved;
    approved.acted_by_user_id = Some(uid(2));
    approved.acted_at = Some(now());
    approved.comment = Some("ok".to_owned());
    assert_eq!(decided.changed_steps, vec![approved]);

    assert_eq!(
        decided.audit,
        vec![
            audit_entry(Some(2), AuditAction::StepApproved, Some(2), Some("ok")),
            audit_entry(None, AuditAction::InstanceApproved, Some(2), None),
        ]
    );
    assert_eq!(
        decided.callbacks,
        vec![CallbackEvent {
            kind: CallbackKind::OnApproved,
            instance_id: InstanceId::new(10).unwrap(),
            event: EventName::new("booking.cancellation_requested").unwrap(),
            entity_type: EntityType::new("booking").unwrap(),
            entity_id: EntityId::new(42).unwrap(),
            decided_by: uid(2),
            comment: Some("ok".to_owned()),
            at: now(),
        }]
    );
}

// ----- decide: reject -----

#[test]
fn rejecting_a_step_cancels_later_steps_and_rejects_the_instance() {
    let instance = three_step_instance();

    let decided = decide(&instance, &reject(201, 1, "price too low"), now()).unwrap();

    assert_eq!(decided.instance_status, InstanceStatus::Rejected);
    assert_eq!(decided.updated_at, now());
    assert_eq!(decided.completed_at, Some(now()));

    let mut rejected = instance.steps[0].clone();
    rejected.status = StepStatus::Rejected;
    rejected.acted_by_user_id = Some(uid(1));
    rejected.acted_at = Some(now());
    rejected.comment = Some("price too low".to_owned());
    let mut second = instance.steps[1].clone();
    second.status = StepStatus::Cancelled;
    let mut third = instance.steps[2].clone();
    third.status = StepStatus::Cancelled;
    assert_eq!(decided.changed_steps, vec![rejected, second, third]);

    assert_eq!(
        decided.audit,
        vec![
            audit_entry(
                Some(1),
                AuditAction::StepRejected,
                Some(1),
                Some("price too low")
            ),
            audit_entry(None, AuditAction::InstanceRejected, Some(1), None),
        ]
    );
    assert_eq!(
        decided.callbacks,
        vec![CallbackEvent {
            kind: CallbackKind::OnRejected,
            instance_id: InstanceId::new(10).unwrap(),
            event: EventName::new("booking.cancellation_requested").unwrap(),
            entity_type: EntityType::new("booking").unwrap(),
            entity_id: EntityId::new(42).unwrap(),
            decided_by: uid(1),
            comment: Some("price too low".to_owned()),
            at: now(),
        }]
    );
}

#[test]
fn rejecting_the_last_step_cancels_nothing() {
    let instance = instance_at_last_step();

    let decided = decide(&instance, &reject(102, 2, "no budget"), now()).unwrap();

    assert_eq!(decided.instance_status, InstanceStatus::Rejected);
    assert_eq!(decided.changed_steps.len(), 1);
    assert_eq!(decided.changed_steps[0].id, sid(102));
    assert_eq!(decided.changed_steps[0].status, StepStatus::Rejected);
    assert_eq!(decided.callbacks.len(), 1);
    assert_eq!(decided.callbacks[0].kind, CallbackKind::OnRejected);
    assert_eq!(decided.callbacks[0].comment.as_deref(), Some("no budget"));
}

#[test]
fn a_blank_comment_is_refused_so_a_reject_always_has_a_reason() {
    // `Verdict::Reject` holds a `Comment`, so an empty reason can only be refused here.
    assert_validation(Comment::new("").unwrap_err(), "comment");
    assert_validation(Comment::new("   ").unwrap_err(), "comment");
    assert_validation(Comment::new("\n\t ").unwrap_err(), "comment");
    assert_eq!(Comment::new(" why ").unwrap().as_str(), " why ");
}

// ----- decide: refusals -----

#[test]
fn deciding_as_a_user_outside_the_snapshot_is_refused() {
    let err = decide(&instance(), &approve(101, 2, None), now()).unwrap_err();

    assert_eq!(
        err,
        WorkflowError::NotAnApprover {
            user: uid(2),
            step: 101,
        }
    );

    let err = decide(&instance(), &reject(101, 3, "no"), now()).unwrap_err();

    assert_eq!(
        err,
        WorkflowError::NotAnApprover {
            user: uid(3),
            step: 101,
        }
    );
}

#[test]
fn deciding_a_pending_step_is_refused() {
    let err = decide(&instance(), &approve(102, 2, None), now()).unwrap_err();
    assert_not_actionable(err, 102, StepStatus::Pending);

    let err = decide(&instance(), &reject(102, 2, "too early"), now()).unwrap_err();
    assert_not_actionable(err, 102, StepStatus::Pending);
}

#[test]
fn deciding_an_already_approved_step_is_refused() {
    let instance = instance_at_last_step();

    let err = decide(&instance, &approve(101, 1, None), now()).unwrap_err();
    assert_not_actionable(err, 101, StepStatus::Approved);

    let err = decide(&instance, &reject(101, 1, "changed my mind"), now()).unwrap_err();
    assert_not_actionable(err, 101, StepStatus::Approved);
}

#[test]
fn deciding_the_same_step_twice_is_refused_the_second_time() {
    let mut instance = instance();
    let decided = decide(&instance, &approve(101, 1, None), now()).unwrap();
    apply(&mut instance, &decided);

    let err = decide(&instance, &approve(101, 4, None), now()).unwrap_err();

    assert_not_actionable(err, 101, StepStatus::Approved);
}

#[test]
fn deciding_a_step_cancelled_by_a_rejection_is_refused() {
    let mut instance = three_step_instance();
    let decided = decide(&instance, &reject(201, 1, "no"), now()).unwrap();
    apply(&mut instance, &decided);

    let err = decide(&instance, &approve(202, 2, None), now()).unwrap_err();
    assert_not_actionable(err, 202, StepStatus::Cancelled);

    let err = decide(&instance, &reject(203, 5, "no"), now()).unwrap_err();
    assert_not_actionable(err, 203, StepStatus::Cancelled);

    let err = decide(&instance, &approve(201, 1, None), now()).unwrap_err();
    assert_not_actionable(err, 201, StepStatus::Rejected);
}

#[test]
fn deciding_an_awaiting_step_of_an_ended_instance_is_refused() {
    for ended in [
        InstanceStatus::Rejected,
        InstanceStatus::Approved,
        InstanceStatus::Cancelled,
    ] {
        let mut instance = instance();
        instance.status = ended;

        let err = decide(&instance, &approve(101, 1, None), now()).unwrap_err();

        assert_not_actionable(err, 101, StepStatus::AwaitingAction);
    }
}

#[test]
fn deciding_a_step_of_a_pending_instance_is_refused() {
    let mut instance = instance();
    instance.status = InstanceStatus::Pending;

    let err = decide(&instance, &reject(101, 1, "no"), now()).unwrap_err();

    assert_not_actionable(err, 101, StepStatus::AwaitingAction);
}

#[test]
fn deciding_a_step_of_another_instance_is_not_found() {
    let err = decide(&instance(), &approve(999, 1, None), now()).unwrap_err();

    assert_eq!(err, WorkflowError::not_found("step 999"));
}

// ----- apply -----

#[test]
fn apply_updates_status_timestamps_and_changed_steps_only() {
    let mut instance = instance();
    let decided = decide(&instance, &approve(101, 1, Some("fine")), now()).unwrap();

    apply(&mut instance, &decided);

    assert_eq!(instance.status, InstanceStatus::InProgress);
    assert_eq!(instance.updated_at, now());
    assert_eq!(instance.completed_at, None);
    assert_eq!(instance.created_at, earlier());
    assert_eq!(instance.steps, decided.changed_steps);
    // Audit ids are assigned by the repository, so apply leaves the log alone.
    assert_eq!(instance.audit.len(), 1);
}

#[test]
fn apply_ends_the_instance_on_a_final_decision() {
    let mut instance = three_step_instance();
    let untouched_first = instance.steps[0].clone();
    let decided = decide(&instance, &reject(201, 1, "no"), now()).unwrap();

    apply(&mut instance, &decided);

    assert_eq!(instance.status, InstanceStatus::Rejected);
    assert_eq!(instance.updated_at, now());
    assert_eq!(instance.completed_at, Some(now()));
    assert_eq!(
        instance.steps.iter().map(|s| s.status).collect::<Vec<_>>(),
        vec![
            StepStatus::Rejected,
            StepStatus::Cancelled,
            StepStatus::Cancelled
        ]
    );
    assert_eq!(instance.steps[0].id, untouched_first.id);
    assert_eq!(instance.steps[0].comment.as_deref(), Some("no"));
}

#[test]
fn a_two_step_instance_runs_to_approval() {
    let mut instance = instance();

    let first = decide(&instance, &approve(101, 4, None), now()).unwrap();
    apply(&mut instance, &first);
    let second = decide(&instance, &approve(102, 2, None), now()).unwrap();
    apply(&mut instance, &second);

    assert_eq!(instance.status, InstanceStatus::Approved);
    assert_eq!(instance.completed_at, Some(now()));
    assert!(
        instance
            .steps
            .iter()
            .all(|s| s.status == StepStatus::Approved)
    );
    assert_eq!(second.callbacks.len(), 1);
    assert_eq!(second.callbacks[0].kind, CallbackKind::OnApproved);
    assert_eq!(second.callbacks[0].comment, None);
}

// ----- validate_template_steps -----

#[test]
fn validate_template_steps_accepts_a_numbered_list() {
    assert_eq!(validate_template_steps(&template().steps), Ok(()));
}

#[test]
fn validate_template_steps_refuses_an_empty_list() {
    assert_validation(validate_template_steps(&[]).unwrap_err(), "steps");
}

#[test]
fn validate_template_steps_refuses_gaps_and_wrong_starts() {
    let gap = [
        template_step(1, "A", user(1)),
        template_step(3, "B", user(2)),
    ];
    assert_validation(
        validate_template_steps(&gap).unwrap_err(),
        "steps[1].step_order",
    );

    let from_zero = [template_step(0, "A", user(1))];
    assert_validation(
        validate_template_steps(&from_zero).unwrap_err(),
        "steps[0].step_order",
    );

    let repeated = [
        template_step(1, "A", user(1)),
        template_step(1, "B", user(2)),
    ];
    assert_validation(
        validate_template_steps(&repeated).unwrap_err(),
        "steps[1].step_order",
    );
}

#[test]
fn validate_template_steps_refuses_blank_or_overlong_names() {
    let blank = [
        template_step(1, "A", user(1)),
        template_step(2, "  ", user(2)),
    ];
    assert_validation(
        validate_template_steps(&blank).unwrap_err(),
        "steps[1].name",
    );

    let empty = [template_step(1, "", user(1))];
    assert_validation(
        validate_template_steps(&empty).unwrap_err(),
        "steps[0].name",
    );

    let long = [template_step(1, &"n".repeat(201), user(1))];
    assert_validation(validate_template_steps(&long).unwrap_err(), "steps[0].name");

    let longest = [template_step(1, &"n".repeat(200), user(1))];
    assert_eq!(validate_template_steps(&longest), Ok(()));
}
