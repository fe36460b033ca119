//! Tests of the template use cases (domain core, driving port): creating, changing and reading
//! templates. Input is checked before the repository is asked, so a refused request never
//! reaches the store.

use crate::domain::model::Done;
use mockall::predicate::eq;

use super::fixtures::{assert_validation, clock, new_template, service, template, user};
use crate::domain::error::WorkflowError;
use crate::domain::model::{NewTemplate, Template, TemplateId, TemplateStep, TemplateUpdate};
use crate::domain::ports::{MockRoleResolver, MockWorkflowRepository, WorkflowUseCases};

fn tid(n: i64) -> TemplateId {
    TemplateId::new(n).unwrap()
}

// ----- create_template -----

#[tokio::test]
async fn create_template_stores_a_valid_template_and_returns_what_the_store_made() {
    let mut repo = MockWorkflowRepository::new();
    repo.expect_create_template()
        .withf(|new, once| *new == new_template() && once.is_none())
        .times(1)
        .returning(|_, _| {
            Box::pin(async {
                Ok(Done::Fresh(Template {
                    version: 1,
                    ..template()
                }))
            })
        });
    let mut roles = MockRoleResolver::new();
    roles.expect_put_user().never();
    let (service, _signal) = service(repo, roles, clock(0));

    let created = service
        .create_template(new_template(), None)
        .await
        .and_then(Done::unkeyed)
        .unwrap();

    assert_eq!(
        created,
        Template {
            version: 1,
            ..template()
        }
    );
}

#[tokio::test]
async fn create_template_refuses_invalid_input_without_asking_the_store() {
    let mut repo = MockWorkflowRepository::new();
    repo.expect_create_template().never();
    let (service, _signal) = service(repo, MockRoleResolver::new(), clock(0));
    let step = |order: i32, name: &str| TemplateStep {
        step_order: order,
        name: name.to_owned(),
        approver: user(1),
        quorum: Default::default(),
        when: None,
        due: None,
    };
    let cases = [
        (
            NewTemplate {
                name: "  ".to_owned(),
                ..new_template()
            },
            "name",
        ),
        (
            NewTemplate {
                name: "n".repeat(201),
                ..new_template()
            },
            "name",
        ),
        (
            NewTemplate {
                steps: Vec::new(),
                ..new_template()
            },
            "steps",
        ),
        (
            NewTemplate {
                steps: vec![step(1, "A"), step(3, "B")],
                ..new_template()
            },
            "steps[1].step_order",
        ),
        (
            NewTemplate {
                steps: vec![step(1, "")],
                ..new_template()
            },
            "steps[0].name",
        ),
    ];

    for (invalid, field) in cases {
        let err = service
            .create_template(invalid, None)
            .await
            .and_then(Done::unkeyed)
            .unwrap_err();
        assert_validation(err, field);
    }
}

#[tokio::test]
async fn create_template_passes_on_a_second_active_template_refused_by_the_store() {
    let refusal = WorkflowError::TemplateConflict {
        event: "booking.cancellation_requested".to_owned(),
    };
    let answer = refusal.clone();
    let mut repo = MockWorkflowRepository::new();
    repo.expect_create_template()
        .times(1)
        .returning(move |_, _| {
            let answer = answer.clone();
            Box::pin(async move { Err(answer) })
        });
    let (service, _signal) = service(repo, MockRoleResolver::new(), clock(0));

    let err = service
        .create_template(new_template(), None)
        .await
        .and_then(Done::unkeyed)
        .unwrap_err();

    assert_eq!(err, refusal);
}

// ----- update_template -----

#[tokio::test]
async fn update_template_refuses_bad_steps_without_asking_the_store() {
    let mut repo = MockWorkflowRepository::new();
    repo.expect_update_template().never();
    let (service, _signal) = service(repo, MockRoleResolver::new(), clock(0));
    let update = TemplateUpdate {
        name: None,
        is_active: None,
        forbid_self_approval: None,
        steps: Some(Vec::new()),
    };

    let err = service
        .update_template(TemplateId::new(7).unwrap(), update)
        .await
        .unwrap_err();

    assert_validation(err, "steps");
}

#[tokio::test]
async fn update_template_passes_a_valid_change_to_the_store() {
    let update = TemplateUpdate {
        name: Some("Renamed".to_owned()),
        is_active: Some(false),
        forbid_self_approval: None,
        steps: None,
    };
    let mut repo = MockWorkflowRepository::new();
    repo.expect_update_template()
        .with(eq(tid(7)), eq(update.clone()))
        .times(1)
        .returning(|_, _| Box::pin(async { Err(WorkflowError::TemplateInUse { template: 7 }) }));
    let (service, _signal) = service(repo, MockRoleResolver::new(), clock(0));

    let err = service.update_template(tid(7), update).await.unwrap_err();

    assert_eq!(err, WorkflowError::TemplateInUse { template: 7 });
}

// ----- template -----

#[tokio::test]
async fn template_is_read_from_the_store() {
    let mut repo = MockWorkflowRepository::new();
    repo.expect_template()
        .with(eq(tid(7)))
        .times(1)
        .returning(|_| Box::pin(async { Ok(template()) }));
    repo.expect_template()
        .with(eq(tid(8)))
        .times(1)
        .returning(|_| Box::pin(async { Err(WorkflowError::not_found("template 8")) }));
    let (service, _signal) = service(repo, MockRoleResolver::new(), clock(0));

    assert_eq!(service.template(tid(7)).await, Ok(template()));
    assert_eq!(
        service.template(tid(8)).await,
        Err(WorkflowError::not_found("template 8"))
    );
}
