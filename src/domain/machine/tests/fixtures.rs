//! Shared fixtures of the state machine's tests (domain core, test-only): ids, approvers, a
//! template, instances at each stage, decisions, and the fixed times every transition runs at.

use chrono::{DateTime, TimeZone, Utc};
use serde_json::json;

use crate::domain::error::WorkflowError;
use crate::domain::model::{
    Approver, AuditAction, AuditEntry, AuditHash, Comment, Decided, DecisionAudit, DecisionRequest,
    EntityId, EntityType, EventName, Instance, InstanceId, InstanceStatus, InstanceStep,
    NewAuditEntry, RoleName, StepId, StepStatus, Template, TemplateId, TemplateStep,
    TriggerRequest, UserId, Verdict,
};

/// The fixed "now" every transition in these tests runs at.
pub(super) fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 5, 6, 7, 8, 9).unwrap()
}

/// A moment well before `now`, when fixture instances were created.
pub(super) fn earlier() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 5, 1, 0, 0, 0).unwrap()
}

pub(super) fn uid(n: i64) -> UserId {
    UserId::new(n).unwrap()
}

pub(super) fn sid(n: i64) -> StepId {
    StepId::new(n).unwrap()
}

pub(super) fn event() -> EventName {
    EventName::new("booking.cancellation_requested").unwrap()
}

pub(super) fn entity_type() -> EntityType {
    EntityType::new("booking").unwrap()
}

pub(super) fn role(name: &str) -> Approver {
    Approver::Role {
        role: RoleName::new(name).unwrap(),
    }
}

pub(super) fn user(n: i64) -> Approver {
    Approver::User { user_id: uid(n) }
}

pub(super) fn template_step(order: i32, name: &str, approver: Approver) -> TemplateStep {
    TemplateStep {
        step_order: order,
        name: name.to_owned(),
        approver,
        quorum: Default::default(),
        when: None,
        due: None,
    }
}

/// An active template for booking cancellations: role `sales_manager`, then user 2.
pub(super) fn template() -> Template {
    Template {
        id: TemplateId::new(7).unwrap(),
        name: "Booking cancellation".to_owned(),
        event: event(),
        entity_type: entity_type(),
        version: 3,
        is_active: true,
        forbid_self_approval: false,
        steps: vec![
            template_step(1, "Sales review", role("sales_manager")),
            template_step(2, "Finance sign-off", user(2)),
        ],
    }
}

pub(super) fn trigger_request() -> TriggerRequest {
    TriggerRequest {
        event: event(),
        entity_type: entity_type(),
        entity_id: EntityId::new(42).unwrap(),
        initiated_by: uid(3),
        context: Some(json!({"reason": "customer request"})),
    }
}

pub(super) fn instance_step(
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
        due: None,
        due_at: None,
        overdue_at: None,
        quorum: 1,
        approvals: Vec::new(),
    }
}

/// An in-progress instance (id 10) with step 101 awaiting users 1 or 4 and step 102 pending,
/// for user 2.
pub(super) fn instance() -> Instance {
    Instance {
        id: InstanceId::new(10).unwrap(),
        template_id: TemplateId::new(7).unwrap(),
        template_version: 3,
        event: event(),
        entity_type: entity_type(),
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
            on_behalf_of: None,
            comment: None,
            at: earlier(),
            hash: AuditHash::from_bytes([0; 32]),
        }],
    }
}

/// A three-step instance whose first step (201) awaits user 1; steps 202 and 203 are pending.
pub(super) fn three_step_instance() -> Instance {
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
pub(super) fn instance_at_last_step() -> Instance {
    let mut instance = instance();
    instance.steps[0].status = StepStatus::Approved;
    instance.steps[0].acted_by_user_id = Some(uid(1));
    instance.steps[0].acted_at = Some(earlier());
    instance.steps[1].status = StepStatus::AwaitingAction;
    instance.steps[1].activated_at = Some(earlier());
    instance
}

pub(super) fn comment(text: &str) -> Comment {
    Comment::new(text).unwrap()
}

pub(super) fn approve(step: i64, by: i64, text: Option<&str>) -> DecisionRequest {
    DecisionRequest {
        step_id: sid(step),
        acted_by: uid(by),
        verdict: Verdict::Approve {
            comment: text.map(comment),
        },
    }
}

pub(super) fn reject(step: i64, by: i64, text: &str) -> DecisionRequest {
    DecisionRequest {
        step_id: sid(step),
        acted_by: uid(by),
        verdict: Verdict::Reject {
            comment: comment(text),
        },
    }
}

/// A trigger's audit entry, which names its step by order (the steps have no ids yet).
pub(super) fn audit_entry(
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

/// A decision's audit entry, which names its step by id (the steps are stored already).
pub(super) fn decision_audit(
    step_id: Option<i64>,
    action: AuditAction,
    actor: Option<i64>,
    comment: Option<&str>,
) -> DecisionAudit {
    DecisionAudit {
        step_id: step_id.map(sid),
        action,
        actor_user_id: actor.map(uid),
        on_behalf_of: None,
        comment: comment.map(str::to_owned),
        at: now(),
    }
}

/// Checks that `decided` is internally consistent with the `before` it was computed from:
/// adapters persist `changed_steps` and return `decided.instance`, so the two must agree, and
/// every step not listed must be untouched (or the store and the answer would drift apart).
/// The instance's identity and its audit trail (the store appends the new entries) stay as
/// they were.
pub(super) fn assert_consistent(before: &Instance, decided: &Decided) {
    let after = &decided.instance;
    assert_eq!(after.steps.len(), before.steps.len(), "steps added or lost");
    for changed in &decided.changed_steps {
        let in_instance = after
            .steps
            .iter()
            .find(|s| s.id == changed.id)
            .unwrap_or_else(|| panic!("changed step {} is not in the instance", changed.id));
        assert_eq!(in_instance, changed, "changed step {} differs", changed.id);
    }
    for (old, new) in before.steps.iter().zip(&after.steps) {
        if !decided.changed_steps.iter().any(|c| c.id == new.id) {
            assert_eq!(new, old, "step {} changed but is not listed", new.id);
        }
    }
    assert_eq!(after.id, before.id);
    assert_eq!(after.template_id, before.template_id);
    assert_eq!(after.template_version, before.template_version);
    assert_eq!(after.event, before.event);
    assert_eq!(after.entity_type, before.entity_type);
    assert_eq!(after.entity_id, before.entity_id);
    assert_eq!(after.initiated_by, before.initiated_by);
    assert_eq!(after.context, before.context);
    assert_eq!(after.created_at, before.created_at);
    assert_eq!(after.audit, before.audit, "the store appends the new audit");
}

pub(super) fn assert_validation(err: WorkflowError, expected_field: &str) {
    match err {
        WorkflowError::Validation { field, .. } => assert_eq!(field, expected_field),
        other => panic!("expected a validation error on {expected_field}, got {other:?}"),
    }
}

pub(super) fn assert_not_actionable(
    err: WorkflowError,
    expected_step: i64,
    expected_status: StepStatus,
) {
    assert_eq!(
        err,
        WorkflowError::StepNotActionable {
            step: expected_step,
            status: expected_status,
        }
    );
}
