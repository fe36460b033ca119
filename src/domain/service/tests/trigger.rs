//! Tests of the trigger use case (domain core, driving port): the service's calls on the
//! repository, the role resolver and the clock, with mockall doubles.

use crate::domain::model::Done;
use std::sync::{Arc, Mutex};

use serde_json::json;

use super::fixtures::{
    clock, clock_time, expect_active_template, expect_user_active, repo, role, service,
    stored_instance, template, trigger_request, uid, user, was_signalled,
};
use crate::domain::error::WorkflowError;
use crate::domain::model::{
    Approver, AuditAction, EntityId, InstanceStatus, NewInstance, StepStatus, TemplateId,
};
use crate::domain::ports::{MockRoleResolver, WorkflowUseCases};

#[tokio::test]
async fn trigger_resolves_roles_once_and_stamps_every_write_with_the_clock() {
    let mut repo = repo();
    expect_active_template(&mut repo, Some(template()));
    repo.expect_decide().never();
    let created = Arc::new(Mutex::new(None::<NewInstance>));
    let recorder = Arc::clone(&created);
    repo.expect_create_instance()
        .times(1)
        .returning(move |new: NewInstance, _| {
            *recorder.lock().unwrap() = Some(new);
            Box::pin(async { Ok(Done::Fresh(stored_instance())) })
        });
    let mut roles = MockRoleResolver::new();
    expect_user_active(&mut roles, 3, Some(true));
    roles
        .expect_eligible_users()
        .withf(|approvers: &[Approver]| approvers == [role("sales_manager"), user(2)])
        .times(1)
        .returning(|_| Box::pin(async { Ok(vec![vec![uid(4), uid(1), uid(4)], vec![uid(2)]]) }));
    let (service, signal) = service(repo, roles, clock(1));

    let instance = service
        .trigger(trigger_request(), None)
        .await
        .and_then(Done::unkeyed)
        .unwrap();

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
        was_signalled(&signal),
        "the first step's notification awaits delivery"
    );
}

#[tokio::test]
async fn trigger_returns_the_store_error_and_writes_nothing_else() {
    let mut repo = repo();
    expect_active_template(&mut repo, Some(template()));
    repo.expect_decide().never();
    repo.expect_create_instance().times(1).returning(|_, _| {
        Box::pin(async { Err(WorkflowError::Unavailable("db down".to_owned())) })
    });
    let mut roles = MockRoleResolver::new();
    expect_user_active(&mut roles, 3, Some(true));
    roles
        .expect_eligible_users()
        .times(1)
        .returning(|_| Box::pin(async { Ok(vec![vec![uid(1)], vec![uid(2)]]) }));
    let (service, signal) = service(repo, roles, clock(1));

    let err = service
        .trigger(trigger_request(), None)
        .await
        .and_then(Done::unkeyed)
        .unwrap_err();

    assert_eq!(err, WorkflowError::Unavailable("db down".to_owned()));
    assert!(!was_signalled(&signal));
}

#[tokio::test]
async fn trigger_passes_on_a_conflict_from_the_store() {
    let mut repo = repo();
    expect_active_template(&mut repo, Some(template()));
    repo.expect_decide().never();
    repo.expect_create_instance().times(1).returning(|_, _| {
        Box::pin(async { Err(WorkflowError::InstanceAlreadyActive { existing: 10 }) })
    });
    let mut roles = MockRoleResolver::new();
    expect_user_active(&mut roles, 3, Some(true));
    roles
        .expect_eligible_users()
        .times(1)
        .returning(|_| Box::pin(async { Ok(vec![vec![uid(1)], vec![uid(2)]]) }));
    let (service, _signal) = service(repo, roles, clock(1));

    let err = service
        .trigger(trigger_request(), None)
        .await
        .and_then(Done::unkeyed)
        .unwrap_err();

    assert_eq!(err, WorkflowError::InstanceAlreadyActive { existing: 10 });
}

#[tokio::test]
async fn trigger_by_an_unknown_user_is_refused_before_anything_is_resolved_or_stored() {
    let mut repo = repo();
    expect_active_template(&mut repo, Some(template()));
    repo.expect_create_instance().never();
    repo.expect_decide().never();
    let mut roles = MockRoleResolver::new();
    expect_user_active(&mut roles, 3, None);
    roles.expect_eligible_users().never();
    let (service, _signal) = service(repo, roles, clock(0));

    let err = service
        .trigger(trigger_request(), None)
        .await
        .and_then(Done::unkeyed)
        .unwrap_err();

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
    roles.expect_user_active().never();
    roles.expect_eligible_users().never();
    let (service, _signal) = service(repo, roles, clock(0));

    let err = service
        .trigger(trigger_request(), None)
        .await
        .and_then(Done::unkeyed)
        .unwrap_err();

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
    expect_user_active(&mut roles, 3, Some(true));
    roles
        .expect_eligible_users()
        .times(1)
        .returning(|_| Box::pin(async { Ok(vec![vec![], vec![uid(2)]]) }));
    let (service, _signal) = service(repo, roles, clock(1));

    let err = service
        .trigger(trigger_request(), None)
        .await
        .and_then(Done::unkeyed)
        .unwrap_err();

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
    expect_user_active(&mut roles, 3, Some(true));
    roles
        .expect_eligible_users()
        .times(1)
        .returning(|_| Box::pin(async { Err(WorkflowError::Unavailable("ldap down".to_owned())) }));
    let (service, _signal) = service(repo, roles, clock(0));

    let err = service
        .trigger(trigger_request(), None)
        .await
        .and_then(Done::unkeyed)
        .unwrap_err();

    assert_eq!(err, WorkflowError::Unavailable("ldap down".to_owned()));
}
