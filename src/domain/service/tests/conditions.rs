//! Tests of step conditions (`when`) in the use cases (domain core, driving port): the
//! service asks the `ConditionEvaluator` port, a mockall double here, to check conditions when
//! a template is saved and to evaluate them at trigger time; a false condition skips its step,
//! one that can't be evaluated keeps it, and an instance whose every step is skipped is
//! approved at once.

use std::sync::{Arc, Mutex};

use serde_json::json;

use super::fixtures::{
    clock, clock_time, expect_active_template, expect_user_active, new_template, repo, service,
    service_with_conditions, stored_instance, template, trigger_request, uid, was_signalled,
};
use crate::domain::error::WorkflowError;
use crate::domain::model::{
    AuditAction, Condition, Done, InstanceStatus, NewInstance, StepStatus, Template, TemplateId,
    TemplateUpdate,
};
use crate::domain::ports::{MockConditionEvaluator, MockRoleResolver, WorkflowUseCases};

fn when(text: &str) -> Condition {
    Condition::new(text).unwrap()
}

/// `template()` with a condition on step 2, or on both steps.
fn conditional(both: bool) -> Template {
    let mut template = template();
    template.steps[1].when = Some(when("context.amount > 10"));
    if both {
        template.steps[0].when = Some(when("context.urgent"));
    }
    template
}

/// Roles for the fixture's two steps (users 1 and 4, then user 2), asked once.
fn roles() -> MockRoleResolver {
    let mut roles = MockRoleResolver::new();
    expect_user_active(&mut roles, 3, Some(true));
    roles
        .expect_eligible_users()
        .times(1)
        .returning(|_| Box::pin(async { Ok(vec![vec![uid(1), uid(4)], vec![uid(2)]]) }));
    roles
}

/// Triggers `template` with `conditions` and returns what the service asked the store to
/// create; the store answers with `stored` and the outbox signal is returned too.
async fn trigger_with(
    template: Template,
    conditions: MockConditionEvaluator,
    stored: crate::domain::model::Instance,
) -> (NewInstance, bool) {
    let mut repo = repo();
    expect_active_template(&mut repo, Some(template));
    let created = Arc::new(Mutex::new(None::<NewInstance>));
    let recorder = Arc::clone(&created);
    repo.expect_create_instance()
        .times(1)
        .returning(move |new: NewInstance, _| {
            *recorder.lock().unwrap() = Some(new);
            let stored = stored.clone();
            Box::pin(async move { Ok(Done::Fresh(stored)) })
        });
    let (service, signal) = service_with_conditions(repo, roles(), clock(1), conditions);
    service.trigger(trigger_request(), None).await.unwrap();
    let new = created
        .lock()
        .unwrap()
        .take()
        .expect("create_instance was called");
    (new, was_signalled(&signal))
}

fn actions(new: &NewInstance) -> Vec<(Option<i32>, AuditAction)> {
    new.audit.iter().map(|a| (a.step_order, a.action)).collect()
}

#[tokio::test]
async fn a_false_condition_skips_its_step_and_is_asked_over_the_trigger_context() {
    let mut conditions = MockConditionEvaluator::new();
    conditions.expect_check().never();
    conditions
        .expect_evaluate()
        .withf(|c, context| {
            c.as_str() == "context.amount > 10" && *context == json!({"reason": "customer request"})
        })
        .times(1)
        .returning(|_, _| Ok(false));

    let (new, signalled) = trigger_with(conditional(false), conditions, stored_instance()).await;

    assert_eq!(new.status, InstanceStatus::InProgress);
    assert_eq!(new.completed_at, None);
    assert_eq!(new.steps[0].status, StepStatus::AwaitingAction);
    assert_eq!(new.steps[1].status, StepStatus::Skipped);
    assert_eq!(new.steps[1].activated_at, None);
    assert_eq!(
        actions(&new),
        vec![
            (None, AuditAction::InstanceCreated),
            (Some(1), AuditAction::StepActivated),
            (Some(2), AuditAction::StepSkipped),
        ]
    );
    assert_eq!(
        new.audit[2].comment.as_deref(),
        Some("condition is false: context.amount > 10")
    );
    assert!(
        signalled,
        "the first kept step's notification awaits delivery"
    );
}

#[tokio::test]
async fn a_true_condition_keeps_its_step() {
    let mut conditions = MockConditionEvaluator::new();
    conditions
        .expect_evaluate()
        .times(1)
        .returning(|_, _| Ok(true));

    let (new, _) = trigger_with(conditional(false), conditions, stored_instance()).await;

    assert_eq!(new.steps[1].status, StepStatus::Pending);
    assert!(!actions(&new).contains(&(Some(2), AuditAction::StepSkipped)));
}

#[tokio::test]
async fn a_condition_that_cannot_be_evaluated_keeps_its_step() {
    let mut conditions = MockConditionEvaluator::new();
    conditions
        .expect_evaluate()
        .times(1)
        .returning(|_, _| Err("No such key: amount".to_owned()));

    let (new, _) = trigger_with(conditional(false), conditions, stored_instance()).await;

    assert_eq!(new.status, InstanceStatus::InProgress);
    assert_eq!(new.steps[1].status, StepStatus::Pending);
    assert_eq!(
        actions(&new),
        vec![
            (None, AuditAction::InstanceCreated),
            (Some(1), AuditAction::StepActivated),
        ]
    );
}

#[tokio::test]
async fn a_trigger_without_context_is_evaluated_over_null() {
    let mut conditions = MockConditionEvaluator::new();
    conditions
        .expect_evaluate()
        .withf(|_, context| context.is_null())
        .times(1)
        .returning(|_, _| Err("no such key".to_owned()));
    let mut repo = repo();
    expect_active_template(&mut repo, Some(conditional(false)));
    repo.expect_create_instance()
        .times(1)
        .returning(|_, _| Box::pin(async { Ok(Done::Fresh(stored_instance())) }));
    let (service, _) = service_with_conditions(repo, roles(), clock(1), conditions);
    let mut request = trigger_request();
    request.context = None;

    service.trigger(request, None).await.unwrap();
}

#[tokio::test]
async fn when_every_step_is_skipped_the_instance_is_approved_at_once() {
    let mut conditions = MockConditionEvaluator::new();
    conditions
        .expect_evaluate()
        .times(2)
        .returning(|_, _| Ok(false));
    let mut approved = stored_instance();
    approved.status = InstanceStatus::Approved;
    approved.completed_at = Some(clock_time());

    let (new, signalled) = trigger_with(conditional(true), conditions, approved).await;

    assert_eq!(new.status, InstanceStatus::Approved);
    assert_eq!(new.completed_at, Some(clock_time()));
    assert!(new.steps.iter().all(|s| s.status == StepStatus::Skipped));
    assert!(new.steps.iter().all(|s| s.activated_at.is_none()));
    assert_eq!(
        actions(&new),
        vec![
            (None, AuditAction::InstanceCreated),
            (Some(1), AuditAction::StepSkipped),
            (Some(2), AuditAction::StepSkipped),
            (None, AuditAction::InstanceApproved),
        ]
    );
    // Nobody decided: the approval has no actor.
    assert_eq!(new.audit[3].actor_user_id, None);
    assert!(signalled, "the outcome awaits delivery");
}

#[tokio::test]
async fn the_first_step_skipped_makes_the_next_one_active() {
    let mut conditions = MockConditionEvaluator::new();
    conditions
        .expect_evaluate()
        .returning(|c, _| Ok(c.as_str() != "context.urgent"));

    let (new, _) = trigger_with(conditional(true), conditions, stored_instance()).await;

    assert_eq!(new.status, InstanceStatus::InProgress);
    assert_eq!(new.steps[0].status, StepStatus::Skipped);
    assert_eq!(new.steps[1].status, StepStatus::AwaitingAction);
    assert_eq!(new.steps[1].activated_at, Some(clock_time()));
    assert_eq!(
        actions(&new),
        vec![
            (None, AuditAction::InstanceCreated),
            (Some(1), AuditAction::StepSkipped),
            (Some(2), AuditAction::StepActivated),
        ]
    );
}

/// An evaluator that refuses `bad`'s text as its parser would.
fn refusing(bad: &'static str) -> MockConditionEvaluator {
    let mut conditions = MockConditionEvaluator::new();
    conditions.expect_evaluate().never();
    conditions.expect_check().returning(move |c| {
        if c.as_str() == bad {
            Err("line 1, column 9: mismatched input".to_owned())
        } else {
            Ok(())
        }
    });
    conditions
}

fn assert_refused_on_step_2(err: WorkflowError) {
    match err {
        WorkflowError::Validation { field, message } => {
            assert_eq!(field, "steps[1].when");
            assert!(message.contains("step 2 ('Finance sign-off')"), "{message}");
            assert!(
                message.contains("line 1, column 9: mismatched input"),
                "{message}"
            );
        }
        other => panic!("expected a validation error, got {other:?}"),
    }
}

#[tokio::test]
async fn a_template_with_a_condition_that_does_not_parse_is_refused_and_not_stored() {
    let mut template = new_template();
    template.steps[0].when = Some(when("context.ok"));
    template.steps[1].when = Some(when("context >"));
    let (service, _) = service_with_conditions(
        repo(),
        MockRoleResolver::new(),
        clock(0),
        refusing("context >"),
    );

    let err = service.create_template(template, None).await.unwrap_err();

    assert_refused_on_step_2(err);
}

#[tokio::test]
async fn a_change_or_new_version_with_a_condition_that_does_not_parse_is_refused() {
    let mut steps = new_template().steps;
    steps[1].when = Some(when("context >"));
    let update = TemplateUpdate {
        name: None,
        is_active: None,
        forbid_self_approval: None,
        steps: Some(steps),
    };
    let mut repo = repo();
    repo.expect_publish_version().never();
    let (service, _) = service_with_conditions(
        repo,
        MockRoleResolver::new(),
        clock(0),
        refusing("context >"),
    );
    let id = TemplateId::new(7).unwrap();

    assert_refused_on_step_2(
        service
            .update_template(id, update.clone())
            .await
            .unwrap_err(),
    );
    assert_refused_on_step_2(service.publish_version(id, update, None).await.unwrap_err());
}

#[tokio::test]
async fn a_well_formed_condition_is_saved() {
    let mut template = new_template();
    template.steps[1].when = Some(when("context.amount > 10"));
    let mut repo = repo();
    repo.checkpoint();
    let stored = template.clone();
    repo.expect_create_template()
        .withf(move |t, once| *t == stored && once.is_none())
        .times(1)
        .returning(|_, _| Box::pin(async { Ok(Done::Fresh(conditional(false))) }));
    let mut conditions = MockConditionEvaluator::new();
    conditions.expect_check().times(1).returning(|_| Ok(()));
    let (service, _) = service_with_conditions(repo, MockRoleResolver::new(), clock(0), conditions);

    let saved = service.create_template(template, None).await.unwrap();

    assert_eq!(saved.unkeyed().unwrap(), conditional(false));
}

#[tokio::test]
async fn a_template_without_conditions_never_asks_the_evaluator() {
    // The plain fixture service fails the test if its evaluator is asked anything.
    let mut repo = repo();
    repo.checkpoint();
    repo.expect_create_template()
        .times(1)
        .returning(|_, _| Box::pin(async { Ok(Done::Fresh(template())) }));
    let (service, _) = service(repo, MockRoleResolver::new(), clock(0));

    service.create_template(new_template(), None).await.unwrap();
}
