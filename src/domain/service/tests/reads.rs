//! Tests of the read use cases (domain core, driving port): the inbox, one instance, and the
//! health check, which the service answers from the repository alone.

use mockall::predicate::eq;

use super::fixtures::{assert_validation, clock, repo, service, stored_instance, uid};
use crate::domain::error::WorkflowError;
use crate::domain::model::InstanceId;
use crate::domain::ports::{MockRoleResolver, WorkflowUseCases};
use crate::domain::service::MAX_PENDING_LIMIT;

// ----- pending_steps -----

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

// ----- instance and health -----

#[tokio::test]
async fn instance_is_read_from_the_store_and_nothing_is_written() {
    let mut repo = repo();
    repo.expect_create_instance().never();
    repo.expect_decide().never();
    repo.expect_instance()
        .with(eq(InstanceId::new(10).unwrap()))
        .times(1)
        .returning(|_| Box::pin(async { Ok(stored_instance()) }));
    let (service, _signal) = service(repo, MockRoleResolver::new(), clock(0));

    let instance = service.instance(InstanceId::new(10).unwrap()).await;

    assert_eq!(instance, Ok(stored_instance()));
}

#[tokio::test]
async fn health_reports_whether_the_store_answers() {
    let mut repo = repo();
    let mut answers = vec![
        Err(WorkflowError::Unavailable("db down".to_owned())),
        Ok(()),
    ];
    repo.expect_health().times(2).returning(move || {
        let answer = answers.remove(0);
        Box::pin(async move { answer })
    });
    let (service, _signal) = service(repo, MockRoleResolver::new(), clock(0));

    assert_eq!(
        service.health().await,
        Err(WorkflowError::Unavailable("db down".to_owned()))
    );
    assert_eq!(service.health().await, Ok(()));
}
