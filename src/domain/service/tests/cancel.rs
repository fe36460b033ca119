//! Tests of the cancel use case (domain core, driving port): the closure the service hands the
//! repository's instance unit of work, the `unknown_user` rule, and the outbox signal.

use crate::domain::model::Done;
use std::sync::{Arc, Mutex};

use super::fixtures::{
    as_stored, assert_changed_steps_in_instance, clock, clock_time, expect_user_exists, repo,
    service, stored_instance, uid, was_signalled,
};
use crate::domain::error::WorkflowError;
use crate::domain::model::{
    AuditAction, CallbackKind, CancelRequest, Comment, Decided, InstanceId, InstanceStatus,
    StepStatus,
};
use crate::domain::ports::{DecideFn, MockRoleResolver, MockWorkflowRepository, WorkflowUseCases};

fn cancel_request(by: i64, reason: Option<&str>) -> CancelRequest {
    CancelRequest {
        instance_id: InstanceId::new(10).unwrap(),
        acted_by: uid(by),
        reason: reason.map(|r| Comment::new(r).unwrap()),
    }
}

type Seen = Arc<Mutex<Option<Result<Decided, WorkflowError>>>>;

/// Expects exactly one `decide_instance` on instance 10 (and no step decision); runs the
/// service's closure on `stored_instance()` as the store would, and records what it decided.
fn expect_cancel_on_fixture(repo: &mut MockWorkflowRepository) -> Seen {
    let seen = Arc::new(Mutex::new(None));
    let recorder = Arc::clone(&seen);
    repo.expect_decide().never();
    repo.expect_decide_instance()
        .withf(|id, _, _| *id == InstanceId::new(10).unwrap())
        .times(1)
        .returning(move |_, decide: DecideFn, _| {
            let outcome = decide(&stored_instance());
            *recorder.lock().unwrap() = Some(outcome.clone());
            let result = outcome.map(as_stored).map(Done::Fresh);
            Box::pin(async move { result })
        });
    seen
}

#[tokio::test]
async fn the_initiator_cancels_at_the_clocks_time_and_the_dispatcher_is_woken() {
    let mut repo = repo();
    let seen = expect_cancel_on_fixture(&mut repo);
    let mut roles = MockRoleResolver::new();
    roles.expect_user_exists().never();
    roles.expect_eligible_users().never();
    let (service, signal) = service(repo, roles, clock(1));

    let instance = service
        .cancel(cancel_request(3, Some("Booking kept")), None)
        .await
        .and_then(Done::unkeyed)
        .unwrap();

    let decided = seen.lock().unwrap().take().unwrap().unwrap();
    assert_changed_steps_in_instance(&decided);
    assert_eq!(decided.instance.status, InstanceStatus::Cancelled);
    assert_eq!(decided.instance.updated_at, clock_time());
    assert_eq!(decided.instance.completed_at, Some(clock_time()));
    assert_eq!(decided.audit.len(), 1);
    assert_eq!(decided.audit[0].action, AuditAction::InstanceCancelled);
    assert_eq!(decided.audit[0].at, clock_time());
    assert_eq!(decided.audit[0].comment.as_deref(), Some("Booking kept"));
    assert_eq!(decided.callbacks.len(), 1);
    assert_eq!(decided.callbacks[0].kind, CallbackKind::OnCancelled);
    assert_eq!(decided.callbacks[0].at, clock_time());

    assert_eq!(
        instance.steps.iter().map(|s| s.status).collect::<Vec<_>>(),
        vec![StepStatus::Cancelled, StepStatus::Cancelled]
    );
    // The service hands back what the store answered, untouched.
    assert_eq!(instance, as_stored(decided));
    assert!(
        was_signalled(&signal),
        "the outbox has an on_cancelled event to deliver"
    );
}

#[tokio::test]
async fn a_user_who_did_not_start_the_instance_is_refused() {
    let mut repo = repo();
    let seen = expect_cancel_on_fixture(&mut repo);
    let mut roles = MockRoleResolver::new();
    expect_user_exists(&mut roles, 1, true);
    let (service, signal) = service(repo, roles, clock(1));

    let err = service
        .cancel(cancel_request(1, None), None)
        .await
        .and_then(Done::unkeyed)
        .unwrap_err();

    assert_eq!(
        err,
        WorkflowError::NotTheInitiator {
            user: uid(1),
            instance: 10
        }
    );
    assert!(seen.lock().unwrap().take().unwrap().is_err());
    assert!(!was_signalled(&signal));
}

#[tokio::test]
async fn an_actor_who_is_no_user_at_all_is_unknown_user() {
    let mut repo = repo();
    expect_cancel_on_fixture(&mut repo);
    let mut roles = MockRoleResolver::new();
    expect_user_exists(&mut roles, 999, false);
    let (service, signal) = service(repo, roles, clock(1));

    let err = service
        .cancel(cancel_request(999, None), None)
        .await
        .and_then(Done::unkeyed)
        .unwrap_err();

    assert_eq!(
        err,
        WorkflowError::UnknownUser {
            user: uid(999),
            field: "acted_by_user_id"
        }
    );
    assert!(!was_signalled(&signal));
}

#[tokio::test]
async fn the_stores_refusals_pass_through_without_asking_the_directory() {
    let refusals = [
        WorkflowError::not_found("instance 10"),
        WorkflowError::InstanceNotActive {
            instance: 10,
            status: InstanceStatus::Approved,
        },
        WorkflowError::Unavailable("db down".to_owned()),
    ];
    for refusal in refusals {
        let mut repo = repo();
        repo.expect_decide().never();
        let answer = refusal.clone();
        repo.expect_decide_instance()
            .times(1)
            .returning(move |_, _, _| {
                let answer = answer.clone();
                Box::pin(async move { Err(answer) })
            });
        let mut roles = MockRoleResolver::new();
        roles.expect_user_exists().never();
        // The clock is read inside the unit of work, which these stores never ran.
        let (service, signal) = service(repo, roles, clock(0));

        let err = service
            .cancel(cancel_request(3, None), None)
            .await
            .and_then(Done::unkeyed)
            .unwrap_err();

        assert_eq!(err, refusal);
        assert!(!was_signalled(&signal));
    }
}
