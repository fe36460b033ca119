//! Tests of the service's use of its ports, with mockall doubles.

use std::sync::{Arc, Mutex};

use chrono::{DateTime, TimeZone, Utc};
use futures_util::FutureExt;
use mockall::predicate::eq;
use serde_json::json;
use tokio::sync::Notify;

use super::*;
use crate::domain::model::{
    Approver, AuditAction, AuditEntry, CallbackKind, Comment, Decided, EntityId, EntityType,
    EventName, InstanceStatus, InstanceStep, NewInstance, RoleName, StepId, StepStatus,
    TemplateStep, Verdict,
};
use crate::domain::ports::{DecideFn, MockClock, MockRoleResolver, MockWorkflowRepository};

type Service = WorkflowService<MockWorkflowRepository, MockRoleResolver, MockClock>;

// ----- fixtures -----

/// The time the mock clock reports; nothing else in the fixtures uses it.
fn clock_time() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 6, 1, 12, 30, 45).unwrap()
}

/// When fixture instances were created, well before `clock_time`.
fn earlier() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 5, 1, 0, 0, 0).unwrap()
}

fn uid(n: i64) -> UserId {
    UserId::new(n).unwrap()
}

fn sid(n: i64) -> StepId {
    StepId::new(n).unwrap()
}

fn event() -> EventName {
    EventName::new("booking.cancellation_requested").unwrap()
}

fn role(name: &str) -> Approver {
    Approver::Role {
        role: RoleName::new(name).unwrap(),
    }
}

fn user(n: i64) -> Approver {
    Approver::User { user_id: uid(n) }
}

/// The active template for `event()`: role `sales_manager`, then user 2.
fn template() -> Template {
    Template {
        id: TemplateId::new(7).unwrap(),
        name: "Booking cancellation".to_owned(),
        event: event(),
        entity_type: EntityType::new("booking").unwrap(),
        version: 3,
        is_active: true,
        steps: vec![
            TemplateStep {
                step_order: 1,
                name: "Sales review".to_owned(),
                approver: role("sales_manager"),
            },
            TemplateStep {
                step_order: 2,
                name: "Finance sign-off".to_owned(),
                approver: user(2),
            },
        ],
    }
}

fn trigger_request() -> TriggerRequest {
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
    }
}

/// A stored in-progress instance (id 10): step 101 awaits users 1 or 4, step 102 (user 2) is
/// pending.
fn stored_instance() -> Instance {
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
            comment: None,
            at: earlier(),
        }],
    }
}

fn approve(step: i64, by: i64) -> DecisionRequest {
    DecisionRequest {
        step_id: sid(step),
        acted_by: uid(by),
        verdict: Verdict::Approve { comment: None },
    }
}

fn reject(step: i64, by: i64, reason: &str) -> DecisionRequest {
    DecisionRequest {
        step_id: sid(step),
        acted_by: uid(by),
        verdict: Verdict::Reject {
            comment: Comment::new(reason).unwrap(),
        },
    }
}

/// A clock that must be read exactly `times` times, and reports `clock_time()`.
fn clock(times: usize) -> MockClock {
    let mut clock = MockClock::new();
    clock.expect_now().times(times).return_const(clock_time());
    clock
}

/// A repository that fails the test if any write the use cases under test never need is made.
fn repo() -> MockWorkflowRepository {
    let mut repo = MockWorkflowRepository::new();
    repo.expect_update_template().never();
    repo.expect_claim_callbacks().never();
    repo.expect_mark_callback_delivered().never();
    repo.expect_mark_callback_failed().never();
    repo
}

fn service(
    repo: MockWorkflowRepository,
    roles: MockRoleResolver,
    clock: MockClock,
) -> (Service, Arc<Notify>) {
    let signal = Arc::new(Notify::new());
    let service = WorkflowService::new(
        Arc::new(repo),
        Arc::new(roles),
        Arc::new(clock),
        Arc::clone(&signal),
    );
    (service, signal)
}

/// Whether the outbox signal holds a notification (consumes it).
fn was_signalled(signal: &Notify) -> bool {
    signal.notified().now_or_never().is_some()
}

fn expect_active_template(repo: &mut MockWorkflowRepository, found: Option<Template>) {
    repo.expect_active_template()
        .with(eq(event()))
        .times(1)
        .returning(move |_| {
            let found = found.clone();
            Box::pin(async move { Ok(found) })
        });
}

fn expect_user_exists(roles: &mut MockRoleResolver, user: i64, exists: bool) {
    roles
        .expect_user_exists()
        .with(eq(uid(user)))
        .times(1)
        .returning(move |_| Box::pin(async move { Ok(exists) }));
}

/// Expects exactly one `decide` on `step`; runs the service's closure on `stored_instance()`,
/// records what it decided, and answers like a repository would (the updated instance, or the
/// closure's refusal).
fn expect_decide_on_fixture(
    repo: &mut MockWorkflowRepository,
    step: i64,
) -> Arc<Mutex<Option<Result<Decided, WorkflowError>>>> {
    let seen = Arc::new(Mutex::new(None));
    let recorder = Arc::clone(&seen);
    repo.expect_decide()
        .withf(move |s, _| *s == sid(step))
        .times(1)
        .returning(move |_, decide: DecideFn| {
            let mut instance = stored_instance();
            let outcome = decide(&instance);
            *recorder.lock().unwrap() = Some(outcome.clone());
            let result = outcome.map(|decided| {
                machine::apply(&mut instance, &decided);
                instance
            });
            Box::pin(async move { result })
        });
    seen
}

fn assert_validation(err: WorkflowError, expected_field: &str) {
    match err {
        WorkflowError::Validation { field, .. } => assert_eq!(field, expected_field),
        other => panic!("expected a validation error on {expected_field}, got {other:?}"),
    }
}

// ----- trigger -----

#[tokio::test]
async fn trigger_resolves_roles_once_and_stamps_every_write_with_the_clock() {
    let mut repo = repo();
    expect_active_template(&mut repo, Some(template()));
    repo.expect_decide().never();
    let created = Arc::new(Mutex::new(None::<NewInstance>));
    let recorder = Arc::clone(&created);
    repo.expect_create_instance()
        .times(1)
        .returning(move |new: NewInstance| {
            *recorder.lock().unwrap() = Some(new);
            Box::pin(async { Ok(stored_instance()) })
        });
    let mut roles = MockRoleResolver::new();
    expect_user_exists(&mut roles, 3, true);
    roles
        .expect_eligible_users()
        .withf(|approvers: &[Approver]| approvers == [role("sales_manager"), user(2)])
        .times(1)
        .returning(|_| Box::pin(async { Ok(vec![vec![uid(4), uid(1), uid(4)], vec![uid(2)]]) }));
    let (service, signal) = service(repo, roles, clock(1));

    let instance = service.trigger(trigger_request()).await.unwrap();

    assert_eq!(instance, stored_instance());
    let new = created
        .lock()
        .unwrap()
        .take()
        .expect("create_instance was called");
    assert_eq!(new.template_id, TemplateId::new(7).unwrap());
    assert_eq!(new.template_version, 3);
    assert_eq!(new.entity_id, EntityId::new(42).unwrap());
    assert_eq!(new.initiated_by, uid(3));
    assert_eq!(new.status, InstanceStatus::InProgress);
    assert_eq!(new.context, Some(json!({"reason": "customer request"})));
    assert_eq!(new.created_at, clock_time());
    assert_eq!(new.steps.len(), 2);
    assert_eq!(new.steps[0].status, StepStatus::AwaitingAction);
    assert_eq!(new.steps[0].activated_at, Some(clock_time()));
    assert_eq!(new.steps[0].eligible_user_ids, vec![uid(1), uid(4)]);
    assert_eq!(new.steps[1].status, StepStatus::Pending);
    assert_eq!(new.steps[1].activated_at, None);
    assert_eq!(new.steps[1].eligible_user_ids, vec![uid(2)]);
    assert_eq!(
        new.audit.iter().map(|a| a.action).collect::<Vec<_>>(),
        vec![AuditAction::InstanceCreated, AuditAction::StepActivated]
    );
    assert!(new.audit.iter().all(|a| a.at == clock_time()));
    assert!(
        !was_signalled(&signal),
        "a trigger has no callback to deliver"
    );
}

#[tokio::test]
async fn trigger_returns_the_store_error_and_writes_nothing_else() {
    let mut repo = repo();
    expect_active_template(&mut repo, Some(template()));
    repo.expect_decide().never();
    repo.expect_create_instance()
        .times(1)
        .returning(|_| Box::pin(async { Err(WorkflowError::Unavailable("db down".to_owned())) }));
    let mut roles = MockRoleResolver::new();
    expect_user_exists(&mut roles, 3, true);
    roles
        .expect_eligible_users()
        .times(1)
        .returning(|_| Box::pin(async { Ok(vec![vec![uid(1)], vec![uid(2)]]) }));
    let (service, signal) = service(repo, roles, clock(1));

    let err = service.trigger(trigger_request()).await.unwrap_err();

    assert_eq!(err, WorkflowError::Unavailable("db down".to_owned()));
    assert!(!was_signalled(&signal));
}

#[tokio::test]
async fn trigger_passes_on_a_conflict_from_the_store() {
    let mut repo = repo();
    expect_active_template(&mut repo, Some(template()));
    repo.expect_decide().never();
    repo.expect_create_instance().times(1).returning(|_| {
        Box::pin(async { Err(WorkflowError::InstanceAlreadyActive { existing: 10 }) })
    });
    let mut roles = MockRoleResolver::new();
    expect_user_exists(&mut roles, 3, true);
    roles
        .expect_eligible_users()
        .times(1)
        .returning(|_| Box::pin(async { Ok(vec![vec![uid(1)], vec![uid(2)]]) }));
    let (service, _signal) = service(repo, roles, clock(1));

    let err = service.trigger(trigger_request()).await.unwrap_err();

    assert_eq!(err, WorkflowError::InstanceAlreadyActive { existing: 10 });
}

#[tokio::test]
async fn trigger_by_an_unknown_user_is_refused_before_anything_is_resolved_or_stored() {
    let mut repo = repo();
    expect_active_template(&mut repo, Some(template()));
    repo.expect_create_instance().never();
    repo.expect_decide().never();
    let mut roles = MockRoleResolver::new();
    expect_user_exists(&mut roles, 3, false);
    roles.expect_eligible_users().never();
    let (service, _signal) = service(repo, roles, clock(0));

    let err = service.trigger(trigger_request()).await.unwrap_err();

    assert_eq!(
        err,
        WorkflowError::UnknownUser {
            user: uid(3),
            field: "initiated_by",
        }
    );
}

#[tokio::test]
async fn trigger_without_an_active_template_never_asks_the_roles() {
    let mut repo = repo();
    expect_active_template(&mut repo, None);
    repo.expect_create_instance().never();
    repo.expect_decide().never();
    let mut roles = MockRoleResolver::new();
    roles.expect_user_exists().never();
    roles.expect_eligible_users().never();
    let (service, _signal) = service(repo, roles, clock(0));

    let err = service.trigger(trigger_request()).await.unwrap_err();

    assert_eq!(
        err,
        WorkflowError::NoActiveTemplate {
            event: "booking.cancellation_requested".to_owned(),
        }
    );
}

#[tokio::test]
async fn trigger_with_an_empty_role_stores_nothing() {
    let mut repo = repo();
    expect_active_template(&mut repo, Some(template()));
    repo.expect_create_instance().never();
    repo.expect_decide().never();
    let mut roles = MockRoleResolver::new();
    expect_user_exists(&mut roles, 3, true);
    roles
        .expect_eligible_users()
        .times(1)
        .returning(|_| Box::pin(async { Ok(vec![vec![], vec![uid(2)]]) }));
    let (service, _signal) = service(repo, roles, clock(1));

    let err = service.trigger(trigger_request()).await.unwrap_err();

    assert_eq!(
        err,
        WorkflowError::NoEligibleApprover {
            approver: "role 'sales_manager'".to_owned(),
            step_order: 1,
        }
    );
}

#[tokio::test]
async fn trigger_stops_when_the_role_resolver_fails() {
    let mut repo = repo();
    expect_active_template(&mut repo, Some(template()));
    repo.expect_create_instance().never();
    repo.expect_decide().never();
    let mut roles = MockRoleResolver::new();
    expect_user_exists(&mut roles, 3, true);
    roles
        .expect_eligible_users()
        .times(1)
        .returning(|_| Box::pin(async { Err(WorkflowError::Unavailable("ldap down".to_owned())) }));
    let (service, _signal) = service(repo, roles, clock(0));

    let err = service.trigger(trigger_request()).await.unwrap_err();

    assert_eq!(err, WorkflowError::Unavailable("ldap down".to_owned()));
}

// ----- decide -----

#[tokio::test]
async fn approve_takes_its_time_from_the_clock_and_never_resolves_roles() {
    let mut repo = repo();
    repo.expect_create_instance().never();
    let seen = expect_decide_on_fixture(&mut repo, 101);
    let mut roles = MockRoleResolver::new();
    roles.expect_eligible_users().times(0);
    roles.expect_user_exists().times(0);
    let (service, signal) = service(repo, roles, clock(1));

    let instance = service.decide(approve(101, 4)).await.unwrap();

    let decided = seen.lock().unwrap().take().unwrap().unwrap();
    assert_eq!(decided.instance_status, InstanceStatus::InProgress);
    assert_eq!(decided.updated_at, clock_time());
    assert_eq!(decided.completed_at, None);
    assert_eq!(decided.changed_steps.len(), 2);
    assert_eq!(decided.changed_steps[0].acted_by_user_id, Some(uid(4)));
    assert_eq!(decided.changed_steps[0].acted_at, Some(clock_time()));
    assert_eq!(decided.changed_steps[1].activated_at, Some(clock_time()));
    assert_eq!(decided.audit.len(), 2);
    assert!(decided.audit.iter().all(|a| a.at == clock_time()));
    assert!(decided.callbacks.is_empty());

    assert_eq!(instance.status, InstanceStatus::InProgress);
    assert_eq!(instance.steps[0].status, StepStatus::Approved);
    assert_eq!(instance.steps[1].status, StepStatus::AwaitingAction);
    assert!(
        !was_signalled(&signal),
        "no callback was written, so the dispatcher has nothing to do"
    );
}

#[tokio::test]
async fn reject_takes_its_time_from_the_clock_and_wakes_the_dispatcher() {
    let mut repo = repo();
    repo.expect_create_instance().never();
    let seen = expect_decide_on_fixture(&mut repo, 101);
    let mut roles = MockRoleResolver::new();
    roles.expect_eligible_users().times(0);
    roles.expect_user_exists().times(0);
    let (service, signal) = service(repo, roles, clock(1));

    let instance = service
        .decide(reject(101, 1, "price too low"))
        .await
        .unwrap();

    let decided = seen.lock().unwrap().take().unwrap().unwrap();
    assert_eq!(decided.instance_status, InstanceStatus::Rejected);
    assert_eq!(decided.updated_at, clock_time());
    assert_eq!(decided.completed_at, Some(clock_time()));
    assert_eq!(decided.changed_steps[0].acted_at, Some(clock_time()));
    assert!(decided.audit.iter().all(|a| a.at == clock_time()));
    assert_eq!(decided.callbacks.len(), 1);
    assert_eq!(decided.callbacks[0].kind, CallbackKind::OnRejected);
    assert_eq!(decided.callbacks[0].at, clock_time());
    assert_eq!(
        decided.callbacks[0].comment.as_deref(),
        Some("price too low")
    );

    assert_eq!(instance.status, InstanceStatus::Rejected);
    assert_eq!(instance.completed_at, Some(clock_time()));
    assert!(
        was_signalled(&signal),
        "the outbox has a callback to deliver"
    );
}

#[tokio::test]
async fn a_failed_decision_write_is_returned_and_nothing_else_is_attempted() {
    let mut repo = repo();
    repo.expect_create_instance().never();
    repo.expect_decide()
        .withf(|s, _| *s == sid(101))
        .times(1)
        .returning(|_, _| {
            Box::pin(async { Err(WorkflowError::Unavailable("db down".to_owned())) })
        });
    let mut roles = MockRoleResolver::new();
    roles.expect_eligible_users().never();
    roles.expect_user_exists().never();
    // The clock is read inside the unit of work, which the failing store never ran.
    let (service, signal) = service(repo, roles, clock(0));

    let err = service
        .decide(reject(101, 1, "price too low"))
        .await
        .unwrap_err();

    assert_eq!(err, WorkflowError::Unavailable("db down".to_owned()));
    assert!(!was_signalled(&signal));
}

#[tokio::test]
async fn a_refused_decision_is_passed_on_without_asking_about_the_user() {
    let mut repo = repo();
    repo.expect_create_instance().never();
    let seen = expect_decide_on_fixture(&mut repo, 102);
    let mut roles = MockRoleResolver::new();
    roles.expect_eligible_users().never();
    roles.expect_user_exists().never();
    let (service, signal) = service(repo, roles, clock(1));

    let err = service.decide(approve(102, 2)).await.unwrap_err();

    let expected = WorkflowError::StepNotActionable {
        step: 102,
        status: StepStatus::Pending,
    };
    assert_eq!(err, expected);
    assert_eq!(seen.lock().unwrap().take(), Some(Err(expected)));
    assert!(!was_signalled(&signal));
}

#[tokio::test]
async fn not_an_approver_who_is_no_user_at_all_becomes_unknown_user() {
    let mut repo = repo();
    repo.expect_create_instance().never();
    let seen = expect_decide_on_fixture(&mut repo, 101);
    let mut roles = MockRoleResolver::new();
    roles.expect_eligible_users().never();
    expect_user_exists(&mut roles, 99, false);
    let (service, signal) = service(repo, roles, clock(1));

    let err = service.decide(approve(101, 99)).await.unwrap_err();

    assert_eq!(
        seen.lock().unwrap().take(),
        Some(Err(WorkflowError::NotAnApprover {
            user: uid(99),
            step: 101,
        }))
    );
    assert_eq!(
        err,
        WorkflowError::UnknownUser {
            user: uid(99),
            field: "acted_by_user_id",
        }
    );
    assert!(!was_signalled(&signal));
}

#[tokio::test]
async fn not_an_approver_who_is_a_user_stays_not_an_approver() {
    let mut repo = repo();
    repo.expect_create_instance().never();
    let _seen = expect_decide_on_fixture(&mut repo, 101);
    let mut roles = MockRoleResolver::new();
    roles.expect_eligible_users().never();
    expect_user_exists(&mut roles, 2, true);
    let (service, _signal) = service(repo, roles, clock(1));

    let err = service
        .decide(reject(101, 2, "not my call"))
        .await
        .unwrap_err();

    assert_eq!(
        err,
        WorkflowError::NotAnApprover {
            user: uid(2),
            step: 101,
        }
    );
}

#[tokio::test]
async fn not_an_approver_whose_user_lookup_fails_reports_the_failure() {
    let mut repo = repo();
    repo.expect_create_instance().never();
    let _seen = expect_decide_on_fixture(&mut repo, 101);
    let mut roles = MockRoleResolver::new();
    roles.expect_eligible_users().never();
    roles
        .expect_user_exists()
        .with(eq(uid(2)))
        .times(1)
        .returning(|_| Box::pin(async { Err(WorkflowError::Unavailable("db down".to_owned())) }));
    let (service, _signal) = service(repo, roles, clock(1));

    let err = service.decide(approve(101, 2)).await.unwrap_err();

    assert_eq!(err, WorkflowError::Unavailable("db down".to_owned()));
}

// ----- pending_steps and update_template -----

#[tokio::test]
async fn pending_steps_refuses_a_limit_out_of_range_without_asking_the_store() {
    let mut repo = repo();
    repo.expect_pending_steps().never();
    let (service, _signal) = service(repo, MockRoleResolver::new(), clock(0));

    for limit in [0, MAX_PENDING_LIMIT + 1] {
        let err = service.pending_steps(uid(1), limit).await.unwrap_err();
        assert_validation(err, "limit");
    }
}

#[tokio::test]
async fn pending_steps_passes_limits_in_range_to_the_store() {
    let mut repo = repo();
    for limit in [1, MAX_PENDING_LIMIT] {
        repo.expect_pending_steps()
            .with(eq(uid(1)), eq(limit))
            .times(1)
            .returning(|_, _| Box::pin(async { Ok(Vec::new()) }));
    }
    let (service, _signal) = service(repo, MockRoleResolver::new(), clock(0));

    assert_eq!(service.pending_steps(uid(1), 1).await, Ok(Vec::new()));
    assert_eq!(
        service.pending_steps(uid(1), MAX_PENDING_LIMIT).await,
        Ok(Vec::new())
    );
}

#[tokio::test]
async fn update_template_refuses_bad_steps_without_asking_the_store() {
    let mut repo = MockWorkflowRepository::new();
    repo.expect_update_template().never();
    let (service, _signal) = service(repo, MockRoleResolver::new(), clock(0));
    let update = TemplateUpdate {
        name: None,
        is_active: None,
        steps: Some(Vec::new()),
    };

    let err = service
        .update_template(TemplateId::new(7).unwrap(), update)
        .await
        .unwrap_err();

    assert_validation(err, "steps");
}
