//! Tests of the `put_user` use case (domain core, driving port): the name is checked here, and
//! a valid user goes to the role resolver, which owns the directory; the repository is never
//! involved.

use mockall::predicate::eq;

use super::fixtures::{assert_validation, clock, directory_user, repo, service, uid};
use crate::domain::error::WorkflowError;
use crate::domain::model::User;
use crate::domain::ports::{MockRoleResolver, WorkflowUseCases};

#[tokio::test]
async fn put_user_refuses_a_blank_name_without_asking_the_directory() {
    let mut roles = MockRoleResolver::new();
    roles.expect_put_user().never();
    let (service, _signal) = service(repo(), roles, clock(0));

    for name in ["", " ", "\t\n  "] {
        let err = service.put_user(directory_user(5, name)).await.unwrap_err();
        assert_validation(err, "name");
    }
}

#[tokio::test]
async fn put_user_refuses_an_overlong_name_and_accepts_the_longest() {
    let longest = directory_user(5, &"n".repeat(200));
    let mut roles = MockRoleResolver::new();
    roles
        .expect_put_user()
        .with(eq(longest.clone()))
        .times(1)
        .returning(|_| Box::pin(async { Ok(true) }));
    let (service, _signal) = service(repo(), roles, clock(0));

    let err = service
        .put_user(directory_user(5, &"n".repeat(201)))
        .await
        .unwrap_err();
    assert_validation(err, "name");

    assert_eq!(service.put_user(longest).await, Ok(true));
}

#[tokio::test]
async fn put_user_forwards_a_valid_user_and_reports_whether_it_was_created() {
    let created = directory_user(5, "Dana Finance");
    let replaced = User {
        roles: Vec::new(),
        ..directory_user(1, "Alex Sales")
    };
    let mut roles = MockRoleResolver::new();
    roles.expect_user_exists().never();
    roles.expect_eligible_users().never();
    roles
        .expect_put_user()
        .with(eq(created.clone()))
        .times(1)
        .returning(|_| Box::pin(async { Ok(true) }));
    roles
        .expect_put_user()
        .with(eq(replaced.clone()))
        .times(1)
        .returning(|_| Box::pin(async { Ok(false) }));
    let (service, _signal) = service(repo(), roles, clock(0));

    assert_eq!(service.put_user(created).await, Ok(true));
    assert_eq!(service.put_user(replaced).await, Ok(false));
}

#[tokio::test]
async fn put_user_passes_on_a_directory_failure() {
    let mut roles = MockRoleResolver::new();
    roles
        .expect_put_user()
        .withf(|user: &User| user.id == uid(5))
        .times(1)
        .returning(|_| Box::pin(async { Err(WorkflowError::Unavailable("db down".to_owned())) }));
    let (service, _signal) = service(repo(), roles, clock(0));

    let err = service
        .put_user(directory_user(5, "Dana Finance"))
        .await
        .unwrap_err();

    assert_eq!(err, WorkflowError::Unavailable("db down".to_owned()));
}
