//! Tests of the decide use case (domain core, driving port): the closure the service hands the
//! repository's unit of work, what it does with the answer, and the outbox signal.

use super::fixtures::{
    approve, as_stored, assert_changed_steps_in_instance, clock, clock_time,
    expect_decide_on_fixture, reject, repo, service, sid, uid, was_signalled,
};
use crate::domain::error::WorkflowError;
use crate::domain::model::{Answer, Done};
use crate::domain::model::{AuditAction, CallbackKind, InstanceStatus, StepStatus};
use crate::domain::ports::{MockRoleResolver, WorkflowUseCases};

#[tokio::test]
async fn approve_takes_its_time_from_the_clock_and_never_resolves_roles() {
    let mut repo = repo();
    repo.expect_create_instance().never();
    let seen = expect_decide_on_fixture(&mut repo, 101, 4, Some(true));
    let mut roles = MockRoleResolver::new();
    roles.expect_eligible_users().times(0);
    roles.expect_user_exists().times(0);
    let (service, signal) = service(repo, roles, clock(1));

    let instance = service
        .decide(approve(101, 4), None)
        .await
        .and_then(Done::unkeyed)
        .unwrap();

    let decided = seen.lock().unwrap().take().unwrap().unwrap();
    assert_eq!(decided.instance.status, InstanceStatus::InProgress);
    assert_eq!(decided.instance.updated_at, clock_time());
    assert_eq!(decided.instance.completed_at, None);
    assert_eq!(decided.changed_steps.len(), 2);
    assert_eq!(decided.changed_steps[0].acted_by_user_id, Some(uid(4)));
    assert_eq!(decided.changed_steps[0].acted_at, Some(clock_time()));
    assert_eq!(decided.changed_steps[1].activated_at, Some(clock_time()));
    assert_changed_steps_in_instance(&decided);
    assert_eq!(decided.audit.len(), 2);
    assert!(decided.audit.iter().all(|a| a.at == clock_time()));
    // Only the next step's notification, at the clock's time.
    assert_eq!(decided.callbacks.len(), 1);
    assert_eq!(decided.callbacks[0].at, clock_time());
    assert_eq!(
        decided.callbacks[0].step.as_ref().map(|s| s.id),
        Some(decided.changed_steps[1].id)
    );

    assert_eq!(instance.status, InstanceStatus::InProgress);
    assert_eq!(instance.steps[0].status, StepStatus::Approved);
    assert_eq!(instance.steps[1].status, StepStatus::AwaitingAction);
    // The service hands back what the store answered, untouched.
    assert_eq!(instance, as_stored(decided));
    assert_eq!(
        instance.audit.iter().map(|a| a.action).collect::<Vec<_>>(),
        vec![
            AuditAction::InstanceCreated,
            AuditAction::StepApproved,
            AuditAction::StepActivated
        ]
    );
    assert!(
        was_signalled(&signal),
        "the next step's notification awaits delivery"
    );
}

#[tokio::test]
async fn reject_takes_its_time_from_the_clock_and_wakes_the_dispatcher() {
    let mut repo = repo();
    repo.expect_create_instance().never();
    let seen = expect_decide_on_fixture(&mut repo, 101, 1, Some(true));
    let mut roles = MockRoleResolver::new();
    roles.expect_eligible_users().times(0);
    roles.expect_user_exists().times(0);
    let (service, signal) = service(repo, roles, clock(1));

    let instance = service
        .decide(reject(101, 1, "price too low"), None)
        .await
        .and_then(Done::unkeyed)
        .unwrap();

    let decided = seen.lock().unwrap().take().unwrap().unwrap();
    assert_eq!(decided.instance.status, InstanceStatus::Rejected);
    assert_eq!(decided.instance.updated_at, clock_time());
    assert_eq!(decided.instance.completed_at, Some(clock_time()));
    assert_eq!(decided.changed_steps[0].acted_at, Some(clock_time()));
    assert_changed_steps_in_instance(&decided);
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
    assert_eq!(instance, as_stored(decided));
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
        .withf(|s, a, _, _| *s == sid(101) && *a == uid(1))
        .times(1)
        .returning(|_, _, _, _| {
            Box::pin(async { Err(WorkflowError::Unavailable("db down".to_owned())) })
        });
    let mut roles = MockRoleResolver::new();
    roles.expect_eligible_users().never();
    roles.expect_user_exists().never();
    roles.expect_user_active().never();
    // The clock is read inside the unit of work, which the failing store never ran.
    let (service, signal) = service(repo, roles, clock(0));

    let err = service
        .decide(reject(101, 1, "price too low"), None)
        .await
        .and_then(Done::unkeyed)
        .unwrap_err();

    assert_eq!(err, WorkflowError::Unavailable("db down".to_owned()));
    assert!(!was_signalled(&signal));
}

#[tokio::test]
async fn a_refused_decision_is_passed_on_unchanged() {
    let mut repo = repo();
    repo.expect_create_instance().never();
    let seen = expect_decide_on_fixture(&mut repo, 102, 2, Some(true));
    let mut roles = MockRoleResolver::new();
    roles.expect_eligible_users().never();
    roles.expect_user_exists().never();
    let (service, signal) = service(repo, roles, clock(1));

    let err = service
        .decide(approve(102, 2), None)
        .await
        .and_then(Done::unkeyed)
        .unwrap_err();

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
    let seen = expect_decide_on_fixture(&mut repo, 101, 99, None);
    let mut roles = MockRoleResolver::new();
    roles.expect_eligible_users().never();
    let (service, signal) = service(repo, roles, clock(1));

    let err = service
        .decide(approve(101, 99), None)
        .await
        .and_then(Done::unkeyed)
        .unwrap_err();

    let expected = WorkflowError::UnknownUser {
        user: uid(99),
        field: "acted_by_user_id",
    };
    // Refused inside the unit of work, so nothing was written.
    assert_eq!(seen.lock().unwrap().take(), Some(Err(expected.clone())));
    assert_eq!(err, expected);
    assert!(!was_signalled(&signal));
}

#[tokio::test]
async fn not_an_approver_who_is_a_user_stays_not_an_approver() {
    let mut repo = repo();
    repo.expect_create_instance().never();
    let _seen = expect_decide_on_fixture(&mut repo, 101, 2, Some(true));
    let mut roles = MockRoleResolver::new();
    roles.expect_eligible_users().never();
    let (service, _signal) = service(repo, roles, clock(1));

    let err = service
        .decide(reject(101, 2, "not my call"), None)
        .await
        .and_then(Done::unkeyed)
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
async fn the_actor_is_read_inside_the_unit_of_work_not_before_it() {
    let mut repo = repo();
    repo.expect_create_instance().never();
    let seen = expect_decide_on_fixture(&mut repo, 101, 1, Some(true));
    let mut roles = MockRoleResolver::new();
    // No separate directory read: it would cost every decision a round trip.
    roles.expect_user_active().never();
    roles.expect_user_exists().never();
    roles.expect_eligible_users().never();
    let (service, _signal) = service(repo, roles, clock(1));

    service
        .decide(approve(101, 1), None)
        .await
        .and_then(Done::unkeyed)
        .unwrap();

    assert!(matches!(seen.lock().unwrap().take(), Some(Ok(_))));
}

#[tokio::test]
async fn a_replayed_answer_does_not_wake_the_dispatcher() {
    let mut repo = repo();
    repo.expect_decide().times(1).returning(|_, _, _, _| {
        Box::pin(async {
            Ok(Done::Replayed(Answer {
                status: 200,
                body: "{}".to_owned(),
            }))
        })
    });
    let (service, signal) = service(repo, MockRoleResolver::new(), clock(0));

    let done = service.decide(approve(101, 4), None).await.unwrap();

    assert!(matches!(done, Done::Replayed(_)));
    assert!(
        !was_signalled(&signal),
        "a replay wrote nothing: there is nothing new to deliver"
    );
}
