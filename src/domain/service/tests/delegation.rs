//! Tests of the delegation use cases (domain core, driving port): the service checks what
//! needs no store at the clock's time, hands the directory the delegation stamped with that
//! time, and says which of user and delegation is missing when there is nothing to end.

use chrono::Duration;
use mockall::predicate::eq;

use super::fixtures::{assert_validation, clock, clock_time, repo, service, uid};
use crate::domain::error::WorkflowError;
use crate::domain::model::{Comment, Delegation};
use crate::domain::ports::{MockRoleResolver, WorkflowUseCases};

#[tokio::test]
async fn a_delegation_is_stored_as_given_from_now() {
    let until = clock_time() + Duration::hours(3);
    let expected = Delegation {
        user_id: uid(2),
        to_user_id: uid(4),
        until,
        reason: Some(Comment::new("Holiday").unwrap()),
        created_at: clock_time(),
    };
    let mut roles = MockRoleResolver::new();
    let stored = expected.clone();
    roles
        .expect_put_delegation()
        .withf(move |d, now| *d == stored && *now == clock_time())
        .times(1)
        .returning(|_, _| Box::pin(async { Ok(()) }));
    let (service, _signal) = service(repo(), roles, clock(1));

    let answer = service
        .put_delegation(
            uid(2),
            uid(4),
            until,
            Some(Comment::new("Holiday").unwrap()),
        )
        .await;
    assert_eq!(answer, Ok(expected));
}

#[tokio::test]
async fn a_past_end_or_a_delegation_to_oneself_never_reaches_the_directory() {
    let mut roles = MockRoleResolver::new();
    roles.expect_put_delegation().never();
    let (service, _signal) = service(repo(), roles, clock(3));
    for (to, until, field) in [
        (4, clock_time(), "until"),
        (4, clock_time() - Duration::days(1), "until"),
        (2, clock_time() + Duration::days(1), "to_user_id"),
    ] {
        let err = service
            .put_delegation(uid(2), uid(to), until, None)
            .await
            .unwrap_err();
        assert_validation(err, field);
    }
}

#[tokio::test]
async fn the_directorys_refusal_is_the_answer() {
    let mut roles = MockRoleResolver::new();
    roles.expect_put_delegation().times(1).returning(|_, _| {
        Box::pin(async {
            Err(WorkflowError::DelegationCycle {
                user: uid(2),
                to_user: uid(4),
            })
        })
    });
    let (service, _signal) = service(repo(), roles, clock(1));
    assert_eq!(
        service
            .put_delegation(uid(2), uid(4), clock_time() + Duration::days(1), None)
            .await,
        Err(WorkflowError::DelegationCycle {
            user: uid(2),
            to_user: uid(4)
        })
    );
}

#[tokio::test]
async fn ending_names_what_is_missing() {
    let mut roles = MockRoleResolver::new();
    roles
        .expect_end_delegation()
        .with(eq(uid(2)), eq(clock_time()))
        .times(1)
        .returning(|_, _| Box::pin(async { Ok(true) }));
    roles
        .expect_end_delegation()
        .with(eq(uid(3)), eq(clock_time()))
        .returning(|_, _| Box::pin(async { Ok(false) }));
    roles
        .expect_end_delegation()
        .with(eq(uid(9)), eq(clock_time()))
        .returning(|_, _| Box::pin(async { Ok(false) }));
    roles
        .expect_user_exists()
        .with(eq(uid(3)))
        .returning(|_| Box::pin(async { Ok(true) }));
    roles
        .expect_user_exists()
        .with(eq(uid(9)))
        .returning(|_| Box::pin(async { Ok(false) }));
    let (service, _signal) = service(repo(), roles, clock(3));

    assert_eq!(service.end_delegation(uid(2)).await, Ok(()));
    assert_eq!(
        service.end_delegation(uid(3)).await,
        Err(WorkflowError::not_found("a running delegation of user 3"))
    );
    assert_eq!(
        service.end_delegation(uid(9)).await,
        Err(WorkflowError::not_found("user 9"))
    );
}
