//! Tests of the directory's reads and of inactive users (domain core, driving port): `user`
//! and `users` answer from the role resolver; an inactive initiator can't trigger, and an
//! inactive actor can't decide even when the step's snapshot holds it, with nothing written.

use crate::domain::model::Done;
use mockall::predicate::eq;

use super::fixtures::{
    approve, clock, directory_user, expect_active_template, expect_decide_on_fixture,
    expect_user_active, reject, repo, role_name, service, template, trigger_request, uid,
    was_signalled,
};
use crate::domain::error::WorkflowError;
use crate::domain::ports::{MockRoleResolver, WorkflowUseCases};

#[tokio::test]
async fn trigger_by_an_inactive_user_is_refused_before_anything_is_resolved_or_stored() {
    let mut repo = repo();
    expect_active_template(&mut repo, Some(template()));
    repo.expect_create_instance().never();
    repo.expect_decide().never();
    let mut roles = MockRoleResolver::new();
    expect_user_active(&mut roles, 3, Some(false));
    roles.expect_eligible_users().never();
    let (service, _signal) = service(repo, roles, clock(0));

    let err = service
        .trigger(trigger_request(), None)
        .await
        .and_then(Done::unkeyed)
        .unwrap_err();

    assert_eq!(err, WorkflowError::UserInactive { user: uid(3) });
}

#[tokio::test]
async fn an_inactive_actor_in_the_snapshot_is_refused_inside_the_unit_of_work() {
    for (request, actor) in [(approve(101, 4), 4), (reject(101, 1, "no"), 1)] {
        let mut repo = repo();
        repo.expect_create_instance().never();
        // Users 1 and 4 are in step 101's snapshot.
        let seen = expect_decide_on_fixture(&mut repo, 101, actor, Some(false));
        let mut roles = MockRoleResolver::new();
        roles.expect_user_exists().never();
        roles.expect_eligible_users().never();
        let (service, signal) = service(repo, roles, clock(1));

        let err = service
            .decide(request, None)
            .await
            .and_then(Done::unkeyed)
            .unwrap_err();

        let expected = WorkflowError::UserInactive { user: uid(actor) };
        assert_eq!(err, expected);
        // The decision itself refused: the store had nothing to write.
        assert_eq!(seen.lock().unwrap().take(), Some(Err(expected)));
        assert!(!was_signalled(&signal));
    }
}

#[tokio::test]
async fn an_unknown_step_is_not_found_whoever_acts() {
    let mut repo = repo();
    repo.expect_create_instance().never();
    repo.expect_decide()
        .times(1)
        .returning(|_, _, _, _| Box::pin(async { Err(WorkflowError::not_found("step 999")) }));
    let mut roles = MockRoleResolver::new();
    roles.expect_user_active().never();
    let (service, _signal) = service(repo, roles, clock(0));

    let err = service
        .decide(approve(999, 4), None)
        .await
        .and_then(Done::unkeyed)
        .unwrap_err();

    assert_eq!(err, WorkflowError::not_found("step 999"));
}

#[tokio::test]
async fn user_is_the_directorys_entry_or_not_found() {
    let stored = directory_user(5, "Dana Finance");
    let answer = stored.clone();
    let mut roles = MockRoleResolver::new();
    roles
        .expect_user()
        .with(eq(uid(5)))
        .times(1)
        .returning(move |_| {
            let answer = answer.clone();
            Box::pin(async move { Ok(Some(answer)) })
        });
    roles
        .expect_user()
        .with(eq(uid(6)))
        .times(1)
        .returning(|_| Box::pin(async { Ok(None) }));
    roles.expect_put_user().never();
    let (service, _signal) = service(repo(), roles, clock(0));

    assert_eq!(service.user(uid(5)).await, Ok(stored));
    assert_eq!(
        service.user(uid(6)).await,
        Err(WorkflowError::not_found("user 6"))
    );
}

#[tokio::test]
async fn users_are_listed_by_the_directory_with_the_role_passed_on() {
    let listed = vec![directory_user(1, "Alex Sales"), directory_user(5, "Dana")];
    let answer = listed.clone();
    let mut roles = MockRoleResolver::new();
    roles
        .expect_users()
        .with(eq(Some(role_name("finance_manager"))))
        .times(1)
        .returning(move |_| {
            let answer = answer.clone();
            Box::pin(async move { Ok(answer) })
        });
    roles
        .expect_users()
        .with(eq(None))
        .times(1)
        .returning(|_| Box::pin(async { Err(WorkflowError::Unavailable("down".to_owned())) }));
    let (service, _signal) = service(repo(), roles, clock(0));

    assert_eq!(
        service.users(Some(role_name("finance_manager"))).await,
        Ok(listed)
    );
    assert_eq!(
        service.users(None).await,
        Err(WorkflowError::Unavailable("down".to_owned()))
    );
}

#[tokio::test]
async fn put_user_refuses_more_than_a_hundred_roles() {
    let mut roles = MockRoleResolver::new();
    roles
        .expect_put_user()
        .times(1)
        .returning(|_| Box::pin(async { Ok(true) }));
    let (service, _signal) = service(repo(), roles, clock(0));
    let with_roles = |n: usize| {
        let mut user = directory_user(5, "Dana");
        user.roles = (0..n).map(|i| role_name(&format!("r{i}"))).collect();
        user
    };

    let err = service.put_user(with_roles(101)).await.unwrap_err();
    assert_eq!(
        err,
        WorkflowError::validation("roles", "must list at most 100 roles")
    );
    assert_eq!(service.put_user(with_roles(100)).await, Ok(true));
}
