//! Tests of the template listing and version use cases (domain core, driving port): `templates`,
//! `publish_version`, `template_version`, and a trigger on a template that forbids
//! self-approval. Input is checked before the repository is asked, so a refused request never
//! reaches the store.

use crate::domain::model::Done;
use mockall::predicate::eq;

use super::fixtures::{
    assert_validation, clock, event, expect_active_template, expect_user_active, repo, role,
    service, template, trigger_request, uid, user,
};
use crate::domain::error::WorkflowError;
use crate::domain::model::{Template, TemplateFilter, TemplateId, TemplateUpdate};
use crate::domain::ports::{MockRoleResolver, MockWorkflowRepository, WorkflowUseCases};

fn tid(n: i64) -> TemplateId {
    TemplateId::new(n).unwrap()
}

fn rename(name: &str) -> TemplateUpdate {
    TemplateUpdate {
        name: Some(name.to_owned()),
        is_active: None,
        forbid_self_approval: None,
        steps: None,
    }
}

// ----- templates -----

#[tokio::test]
async fn templates_hands_the_filter_to_the_store() {
    let filter = TemplateFilter {
        event: Some(event()),
        is_active: Some(true),
    };
    let mut repo = MockWorkflowRepository::new();
    repo.expect_templates()
        .with(eq(filter.clone()))
        .times(1)
        .returning(|_| Box::pin(async { Ok(vec![template()]) }));
    let (service, _signal) = service(repo, MockRoleResolver::new(), clock(0));

    assert_eq!(service.templates(filter).await, Ok(vec![template()]));
}

// ----- publish_version -----

#[tokio::test]
async fn publish_version_passes_a_valid_change_to_the_store() {
    let published = Template {
        name: "Renamed".to_owned(),
        version: 4,
        ..template()
    };
    let answer = published.clone();
    let mut repo = repo();
    repo.expect_publish_version()
        .withf(|id, update, once| *id == tid(7) && *update == rename("Renamed") && once.is_none())
        .times(1)
        .returning(move |_, _, _| {
            let answer = answer.clone();
            Box::pin(async move { Ok(Done::Fresh(answer)) })
        });
    let (service, _signal) = service(repo, MockRoleResolver::new(), clock(0));

    assert_eq!(
        service
            .publish_version(tid(7), rename("Renamed"), None)
            .await
            .and_then(Done::unkeyed),
        Ok(published)
    );
}

#[tokio::test]
async fn publish_version_refuses_invalid_input_without_asking_the_store() {
    let mut repo = repo();
    repo.expect_publish_version().never();
    let (service, _signal) = service(repo, MockRoleResolver::new(), clock(0));
    let no_steps = TemplateUpdate {
        steps: Some(Vec::new()),
        ..rename("Renamed")
    };

    assert_validation(
        service
            .publish_version(tid(7), rename(" "), None)
            .await
            .and_then(Done::unkeyed)
            .unwrap_err(),
        "name",
    );
    assert_validation(
        service
            .publish_version(tid(7), no_steps, None)
            .await
            .and_then(Done::unkeyed)
            .unwrap_err(),
        "steps",
    );
}

#[tokio::test]
async fn publish_version_passes_on_the_stores_conflict() {
    let conflict = WorkflowError::TemplateConflict {
        event: "booking.cancellation_requested".to_owned(),
    };
    let answer = conflict.clone();
    let mut repo = repo();
    repo.expect_publish_version()
        .times(1)
        .returning(move |_, _, _| {
            let answer = answer.clone();
            Box::pin(async move { Err(answer) })
        });
    let (service, _signal) = service(repo, MockRoleResolver::new(), clock(0));

    let activate = TemplateUpdate {
        name: None,
        is_active: Some(true),
        forbid_self_approval: None,
        steps: None,
    };
    assert_eq!(
        service
            .publish_version(tid(7), activate, None)
            .await
            .and_then(Done::unkeyed),
        Err(conflict)
    );
}

// ----- template_version -----

#[tokio::test]
async fn template_version_is_read_from_the_store() {
    let mut repo = MockWorkflowRepository::new();
    repo.expect_template_version()
        .with(eq(tid(7)), eq(2))
        .times(1)
        .returning(|_, _| {
            Box::pin(async {
                Ok(Template {
                    version: 2,
                    ..template()
                })
            })
        });
    let (service, _signal) = service(repo, MockRoleResolver::new(), clock(0));

    let found = service.template_version(tid(7), 2).await.unwrap();

    assert_eq!(found.version, 2);
}

#[tokio::test]
async fn a_version_below_1_is_not_found_without_asking_the_store() {
    let mut repo = MockWorkflowRepository::new();
    repo.expect_template_version().never();
    let (service, _signal) = service(repo, MockRoleResolver::new(), clock(0));

    for version in [0, -1] {
        assert_eq!(
            service.template_version(tid(7), version).await,
            Err(WorkflowError::not_found(format!(
                "version {version} of template 7"
            )))
        );
    }
}

// ----- trigger on a template that forbids self-approval -----

#[tokio::test]
async fn trigger_leaves_the_initiator_out_when_the_template_forbids_self_approval() {
    let strict = Template {
        forbid_self_approval: true,
        ..template()
    };
    let mut repo = repo();
    expect_active_template(&mut repo, Some(strict));
    repo.expect_create_instance().never();
    let mut roles = MockRoleResolver::new();
    expect_user_active(&mut roles, 3, Some(true));
    // User 3, the initiator, is the only sales manager.
    roles
        .expect_eligible_users()
        .withf(|approvers| approvers == [role("sales_manager"), user(2)])
        .times(1)
        .returning(|_| Box::pin(async { Ok(vec![vec![uid(3)], vec![uid(2)]]) }));
    let (service, _signal) = service(repo, roles, clock(1));

    let err = service
        .trigger(trigger_request(), None)
        .await
        .and_then(Done::unkeyed)
        .unwrap_err();

    assert_eq!(
        err,
        WorkflowError::NoEligibleApprover {
            approver: "role 'sales_manager' without the initiator, as self-approval is forbidden"
                .to_owned(),
            step_order: 1,
        }
    );
}
