//! Shared fixtures of the service's tests (domain core, test-only): ids, a template, a stored
//! instance, requests, and mockall doubles of the driven ports preset for the common cases.
//!
//! They mirror the state machine's fixtures (same template, same instance) but live here: the
//! machine's test tree is private to `machine`, so this tree can't reach it.

use crate::domain::model::Done;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, TimeZone, Utc};
use futures_util::FutureExt;
use mockall::predicate::eq;
use serde_json::json;
use tokio::sync::Notify;

use crate::domain::error::WorkflowError;
use crate::domain::model::{
    Approver, AuditAction, AuditEntry, AuditHash, Comment, Decided, DecisionRequest, EntityId,
    EntityType, EventName, Instance, InstanceId, InstanceStatus, InstanceStep, NewTemplate,
    RoleName, StepId, StepStatus, Template, TemplateId, TemplateStep, TriggerRequest, User, UserId,
    Verdict,
};
use crate::domain::ports::{
    ActFn, MockClock, MockConditionEvaluator, MockRoleResolver, MockWorkflowRepository,
};
use crate::domain::service::WorkflowService;

pub(super) type Service =
    WorkflowService<MockWorkflowRepository, MockRoleResolver, MockClock, MockConditionEvaluator>;

/// The time the mock clock reports; nothing else in the fixtures uses it.
pub(super) fn clock_time() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 6, 1, 12, 30, 45).unwrap()
}

/// When fixture instances were created, well before `clock_time`.
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

pub(super) fn role_name(name: &str) -> RoleName {
    RoleName::new(name).unwrap()
}

pub(super) fn role(name: &str) -> Approver {
    Approver::Role {
        role: role_name(name),
    }
}

pub(super) fn user(n: i64) -> Approver {
    Approver::User { user_id: uid(n) }
}

fn template_steps() -> Vec<TemplateStep> {
    vec![
        TemplateStep {
            step_order: 1,
            name: "Sales review".to_owned(),
            approver: role("sales_manager"),
            quorum: Default::default(),
            when: None,
            due: None,
        },
        TemplateStep {
            step_order: 2,
            name: "Finance sign-off".to_owned(),
            approver: user(2),
            quorum: Default::default(),
            when: None,
            due: None,
        },
    ]
}

/// The active template for `event()`: role `sales_manager`, then user 2.
pub(super) fn template() -> Template {
    Template {
        id: TemplateId::new(7).unwrap(),
        name: "Booking cancellation".to_owned(),
        event: event(),
        entity_type: EntityType::new("booking").unwrap(),
        version: 3,
        is_active: true,
        forbid_self_approval: false,
        steps: template_steps(),
    }
}

/// `template()` as it is first created: no id, no version yet.
pub(super) fn new_template() -> NewTemplate {
    NewTemplate {
        name: "Booking cancellation".to_owned(),
        event: event(),
        entity_type: EntityType::new("booking").unwrap(),
        is_active: true,
        forbid_self_approval: false,
        steps: template_steps(),
    }
}

/// A user of the directory holding two roles.
pub(super) fn directory_user(n: i64, name: &str) -> User {
    User {
        id: uid(n),
        name: name.to_owned(),
        roles: vec![role_name("sales_manager"), role_name("finance_manager")],
        active: true,
    }
}

pub(super) fn trigger_request() -> TriggerRequest {
    TriggerRequest {
        event: event(),
        entity_type: EntityType::new("booking").unwrap(),
        entity_id: EntityId::new(42).unwrap(),
        initiated_by: uid(3),
        context: Some(json!({"reason": "customer request"})),
    }
}

fn instance_step(id: i64, order: i32, approver: Approver, eligible: &[i64]) -> InstanceStep {
    InstanceStep {
        id: sid(id),
        step_order: order,
        name: format!("Step {order}"),
        approver,
        eligible_user_ids: eligible.iter().copied().map(uid).collect(),
        status: StepStatus::Pending,
        acted_by_user_id: None,
        comment: None,
        acted_at: None,
        activated_at: None,
        due: None,
        due_at: None,
        overdue_at: None,
        quorum: 1,
        approvals: Vec::new(),
    }
}

/// A stored in-progress instance (id 10): step 101 awaits users 1 or 4, step 102 (user 2) is
/// pending.
pub(super) fn stored_instance() -> Instance {
    let mut first = instance_step(101, 1, role("sales_manager"), &[1, 4]);
    first.status = StepStatus::AwaitingAction;
    first.activated_at = Some(earlier());
    Instance {
        id: InstanceId::new(10).unwrap(),
        template_id: TemplateId::new(7).unwrap(),
        template_version: 3,
        event: event(),
        entity_type: EntityType::new("booking").unwrap(),
        entity_id: EntityId::new(42).unwrap(),
        initiated_by: uid(3),
        status: InstanceStatus::InProgress,
        context: None,
        created_at: earlier(),
        updated_at: earlier(),
        completed_at: None,
        steps: vec![first, instance_step(102, 2, user(2), &[2])],
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

pub(super) fn approve(step: i64, by: i64) -> DecisionRequest {
    DecisionRequest {
        step_id: sid(step),
        acted_by: uid(by),
        verdict: Verdict::Approve { comment: None },
    }
}

pub(super) fn reject(step: i64, by: i64, reason: &str) -> DecisionRequest {
    DecisionRequest {
        step_id: sid(step),
        acted_by: uid(by),
        verdict: Verdict::Reject {
            comment: Comment::new(reason).unwrap(),
        },
    }
}

/// A clock that must be read exactly `times` times, and reports `clock_time()`.
pub(super) fn clock(times: usize) -> MockClock {
    let mut clock = MockClock::new();
    clock.expect_now().times(times).return_const(clock_time());
    clock
}

/// A repository that fails the test if any write the use cases under test never need is made.
pub(super) fn repo() -> MockWorkflowRepository {
    let mut repo = MockWorkflowRepository::new();
    repo.expect_create_template().never();
    repo.expect_update_template().never();
    repo.expect_claim_callbacks().never();
    repo.expect_mark_callbacks_delivered().never();
    repo.expect_mark_callbacks_failed().never();
    repo
}

/// A service whose condition evaluator must never be asked (the fixtures' templates have no
/// conditions).
pub(super) fn service(
    repo: MockWorkflowRepository,
    roles: MockRoleResolver,
    clock: MockClock,
) -> (Service, Arc<Notify>) {
    let mut conditions = MockConditionEvaluator::new();
    conditions.expect_check().never();
    conditions.expect_evaluate().never();
    service_with_conditions(repo, roles, clock, conditions)
}

/// A service over these doubles, `conditions` included.
pub(super) fn service_with_conditions(
    repo: MockWorkflowRepository,
    roles: MockRoleResolver,
    clock: MockClock,
    conditions: MockConditionEvaluator,
) -> (Service, Arc<Notify>) {
    let signal = Arc::new(Notify::new());
    let service = WorkflowService::new(
        Arc::new(repo),
        Arc::new(roles),
        Arc::new(clock),
        Arc::new(conditions),
        Arc::clone(&signal),
    );
    (service, signal)
}

/// Whether the outbox signal holds a notification (consumes it).
pub(super) fn was_signalled(signal: &Notify) -> bool {
    signal.notified().now_or_never().is_some()
}

pub(super) fn expect_active_template(repo: &mut MockWorkflowRepository, found: Option<Template>) {
    repo.expect_active_template()
        .with(eq(event()))
        .times(1)
        .returning(move |_| {
            let found = found.clone();
            Box::pin(async move { Ok(found) })
        });
}

/// The directory answers once whether `user` is active (`None`: no such user).
pub(super) fn expect_user_active(roles: &mut MockRoleResolver, user: i64, active: Option<bool>) {
    roles
        .expect_user_active()
        .with(eq(uid(user)))
        .times(1)
        .returning(move |_| Box::pin(async move { Ok(active) }));
}

pub(super) fn expect_user_exists(roles: &mut MockRoleResolver, user: i64, exists: bool) {
    roles
        .expect_user_exists()
        .with(eq(uid(user)))
        .times(1)
        .returning(move |_| Box::pin(async move { Ok(exists) }));
}

/// What a repository answers for a stored decision: the decided instance with the decision's
/// audit entries appended under the ids the store gave them.
pub(super) fn as_stored(decided: Decided) -> Instance {
    let mut instance = decided.instance;
    let instance_id = instance.id;
    let next_id = instance.audit.last().map_or(1, |entry| entry.id + 1);
    instance.audit.extend(
        decided
            .audit
            .into_iter()
            .zip(next_id..)
            .map(|(entry, id)| AuditEntry {
                id,
                instance_id,
                step_id: entry.step_id,
                action: entry.action,
                actor_user_id: entry.actor_user_id,
                on_behalf_of: entry.on_behalf_of,
                comment: entry.comment,
                at: entry.at,
                // Not chained: these tests don't verify trails (the audit chain's own do).
                hash: AuditHash::from_bytes([0; 32]),
            }),
    );
    instance
}

/// Expects exactly one `decide` on `step`; runs the service's closure on `stored_instance()`,
/// records what it decided, and answers like a repository would (the decided instance with
/// its stored audit, or the closure's refusal).
/// `active` is the actor's directory entry as the unit of work reads it (`None`: no such user).
pub(super) fn expect_decide_on_fixture(
    repo: &mut MockWorkflowRepository,
    step: i64,
    actor: i64,
    active: Option<bool>,
) -> Arc<Mutex<Option<Result<Decided, WorkflowError>>>> {
    let seen = Arc::new(Mutex::new(None));
    let recorder = Arc::clone(&seen);
    repo.expect_decide()
        .withf(move |s, a, _, _| *s == sid(step) && *a == uid(actor))
        .times(1)
        .returning(move |_, _, decide: ActFn, _| {
            let outcome = decide(&stored_instance(), active, &[]);
            *recorder.lock().unwrap() = Some(outcome.clone());
            let result = outcome.map(as_stored).map(Done::Fresh);
            Box::pin(async move { result })
        });
    seen
}

/// The store writes `changed_steps` and answers with `instance`: they must agree.
pub(super) fn assert_changed_steps_in_instance(decided: &Decided) {
    assert!(!decided.changed_steps.is_empty());
    for changed in &decided.changed_steps {
        assert_eq!(
            decided.instance.steps.iter().find(|s| s.id == changed.id),
            Some(changed),
            "changed step {} differs from the decided instance",
            changed.id
        );
    }
}

pub(super) fn assert_validation(err: WorkflowError, expected_field: &str) {
    match err {
        WorkflowError::Validation { field, .. } => assert_eq!(field, expected_field),
        other => panic!("expected a validation error on {expected_field}, got {other:?}"),
    }
}
