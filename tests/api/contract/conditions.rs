//! Contract: conditional steps. A template step's condition is stored with the template and
//! its versions; a step skipped at trigger is stored `skipped` with its `step_skipped` entry,
//! never reaches an inbox and is passed over by the decisions; an instance whose every step is
//! skipped is stored approved, with its outcome in the outbox; the trails verify.

use std::sync::Arc;

use approvals::domain::model::{
    AuditAction, AuditVerification, CallbackKind, Condition, Done, Instance, InstanceStatus,
    StepStatus, TemplateUpdate, TriggerRequest,
};
use approvals::domain::ports::ConditionEvaluator;
use approvals::domain::{WorkflowError, audit_chain, machine};
use approvals::outbound::conditions::CelConditions;
use chrono::{DateTime, TimeDelta, Utc};
use serde_json::json;

use super::{ContractStore, approve, audit_summary};
use crate::fixtures::{at, by_role, demo_template, request, step, template, tid, uid};

contract_tests! {
    case_a_condition_is_stored_with_the_template_and_its_versions =>
        memory_a_condition_is_stored_with_the_template_and_its_versions,
        postgres_a_condition_is_stored_with_the_template_and_its_versions;
    case_a_false_condition_skips_its_step =>
        memory_a_false_condition_skips_its_step,
        postgres_a_false_condition_skips_its_step;
    case_a_true_or_unknown_condition_keeps_its_step =>
        memory_a_true_or_unknown_condition_keeps_its_step,
        postgres_a_true_or_unknown_condition_keeps_its_step;
    case_every_step_skipped_approves_at_once =>
        memory_every_step_skipped_approves_at_once,
        postgres_every_step_skipped_approves_at_once;
}

const DISCOUNT: &str = "unit.discount_requested";

/// What the service would store for `request` now, its conditions evaluated as the service
/// does (with the CEL adapter; one that can't be evaluated keeps its step).
async fn trigger<S: ContractStore>(
    store: &S,
    request: TriggerRequest,
    now: DateTime<Utc>,
) -> Result<Instance, WorkflowError> {
    let template = store
        .active_template(&request.event)
        .await
        .unwrap()
        .expect("an active template for the event");
    let approvers: Vec<_> = template.steps.iter().map(|s| s.approver.clone()).collect();
    let snapshots = store.eligible_users(&approvers).await.unwrap();
    let context = request.context.clone().unwrap_or_default();
    let applies: Vec<bool> = template
        .steps
        .iter()
        .map(|s| {
            s.when
                .as_ref()
                .is_none_or(|w| CelConditions.evaluate(w, &context).unwrap_or(true))
        })
        .collect();
    let new = machine::trigger_with_conditions(&template, request, snapshots, &applies, now)?;
    store
        .create_instance(new, None)
        .await
        .and_then(Done::unkeyed)
}

/// Triggers the demo's discount template (4) for unit `unit` with `context`.
async fn discount<S: ContractStore>(
    store: &S,
    unit: i64,
    context: serde_json::Value,
    now: DateTime<Utc>,
) -> Instance {
    trigger(
        store,
        request(DISCOUNT, "unit", unit, 3, Some(context)),
        now,
    )
    .await
    .unwrap()
}

async fn case_a_condition_is_stored_with_the_template_and_its_versions<S: ContractStore>(
    store: Arc<S>,
) {
    let demo = demo_template(3);
    assert_eq!(
        demo.steps[1].when.as_ref().map(Condition::as_str),
        Some("context.discount_percent > 10")
    );
    assert_eq!(store.template(tid(4)).await.unwrap(), demo);
    assert_eq!(store.template_version(tid(4), 1).await.unwrap(), demo);

    // A new version moves the condition to step 1 and drops it from step 2.
    let mut steps = demo.steps.clone();
    steps[0].when = Some(Condition::new("context.discount_percent >= 1").unwrap());
    steps[1].when = None;
    let update = TemplateUpdate {
        name: None,
        is_active: None,
        forbid_self_approval: None,
        steps: Some(steps.clone()),
    };
    let published = store
        .publish_version(tid(4), update, None)
        .await
        .and_then(Done::unkeyed)
        .unwrap();
    assert_eq!(published.version, 2);
    assert_eq!(published.steps, steps);
    assert_eq!(store.template(tid(4)).await.unwrap(), published);
    assert_eq!(store.template_version(tid(4), 2).await.unwrap(), published);
    // The first version keeps its own.
    assert_eq!(store.template_version(tid(4), 1).await.unwrap(), demo);
}

async fn case_a_false_condition_skips_its_step<S: ContractStore>(store: Arc<S>) {
    let created = discount(&*store, 1, json!({"discount_percent": 5}), at(9, 0, 0)).await;
    assert_eq!(created.status, InstanceStatus::InProgress);
    assert_eq!(created.steps[0].status, StepStatus::AwaitingAction);
    assert_eq!(created.steps[1].status, StepStatus::Skipped);
    assert_eq!(created.steps[1].activated_at, None);
    assert_eq!(store.instance(created.id).await.unwrap(), created);
    let skipped = created
        .audit
        .iter()
        .find(|a| a.action == AuditAction::StepSkipped)
        .expect("a step_skipped entry");
    assert_eq!(skipped.step_id, Some(created.steps[1].id));
    assert_eq!(
        skipped.comment.as_deref(),
        Some("condition is false: context.discount_percent > 10")
    );
    // Finance is never asked.
    assert!(
        store
            .pending_steps(uid(2), 50, None)
            .await
            .unwrap()
            .is_empty()
    );

    let approved = approve(&*store, created.steps[0].id, 1, None, at(9, 1, 0))
        .await
        .unwrap();
    assert_eq!(approved.status, InstanceStatus::Approved);
    assert_eq!(approved.completed_at, Some(at(9, 1, 0)));
    assert_eq!(approved.steps[1].status, StepStatus::Skipped);
    assert_eq!(store.instance(approved.id).await.unwrap(), approved);
    assert!(
        store
            .pending_steps(uid(2), 50, None)
            .await
            .unwrap()
            .is_empty()
    );
    let (first, second) = (Some(created.steps[0].id), Some(created.steps[1].id));
    assert_eq!(
        audit_summary(&approved),
        vec![
            (AuditAction::InstanceCreated, None, Some(uid(3))),
            (AuditAction::StepActivated, first, None),
            (AuditAction::StepSkipped, second, None),
            (AuditAction::StepApproved, first, Some(uid(1))),
            (AuditAction::InstanceApproved, None, Some(uid(1))),
        ]
    );
    assert_eq!(
        audit_chain::verify(&approved),
        AuditVerification::Valid { entries: 5 }
    );
}

async fn case_a_true_or_unknown_condition_keeps_its_step<S: ContractStore>(store: Arc<S>) {
    // Twenty per cent: finance looks too.
    let big = discount(&*store, 1, json!({"discount_percent": 20}), at(9, 0, 0)).await;
    // No discount given: the condition can't be told, so the step is kept.
    let unknown = discount(&*store, 2, json!({"reason": "loyal"}), at(9, 0, 1)).await;
    for created in [&big, &unknown] {
        assert_eq!(created.steps[1].status, StepStatus::Pending, "{created:?}");
        assert!(
            created
                .audit
                .iter()
                .all(|a| a.action != AuditAction::StepSkipped)
        );
        let next = approve(&*store, created.steps[0].id, 1, None, at(9, 1, 0))
            .await
            .unwrap();
        assert_eq!(next.status, InstanceStatus::InProgress);
        assert_eq!(next.steps[1].status, StepStatus::AwaitingAction);
    }
    assert_eq!(
        store.pending_steps(uid(2), 50, None).await.unwrap().len(),
        2
    );
}

async fn case_every_step_skipped_approves_at_once<S: ContractStore>(store: Arc<S>) {
    let mut first = step(1, "Sales", by_role("sales_manager"));
    first.when = Some(Condition::new("context.amount > 100").unwrap());
    let mut second = step(2, "Finance", by_role("finance_manager"));
    second.when = Some(Condition::new("context.amount > 1000").unwrap());
    store
        .put_template(template(
            9,
            "Small refunds",
            "booking.refund_requested",
            "booking",
            true,
            vec![first, second],
        ))
        .await;
    let refund = |entity, now| {
        trigger(
            &*store,
            request(
                "booking.refund_requested",
                "booking",
                entity,
                3,
                Some(json!({"amount": 40})),
            ),
            now,
        )
    };

    let created = refund(1, at(9, 0, 0)).await.unwrap();

    assert_eq!(created.status, InstanceStatus::Approved);
    assert_eq!(created.completed_at, Some(at(9, 0, 0)));
    assert!(
        created
            .steps
            .iter()
            .all(|s| s.status == StepStatus::Skipped)
    );
    assert_eq!(store.instance(created.id).await.unwrap(), created);
    assert_eq!(
        audit_summary(&created),
        vec![
            (AuditAction::InstanceCreated, None, Some(uid(3))),
            (AuditAction::StepSkipped, Some(created.steps[0].id), None),
            (AuditAction::StepSkipped, Some(created.steps[1].id), None),
            (AuditAction::InstanceApproved, None, None),
        ]
    );
    assert_eq!(
        audit_chain::verify(&created),
        AuditVerification::Valid { entries: 4 }
    );
    // Its outcome is the one event it has, caused by its initiator.
    let claimed = store
        .claim_callbacks(at(9, 0, 1), at(9, 0, 1) + TimeDelta::seconds(60), 100, None)
        .await
        .unwrap();
    let mine: Vec<_> = claimed
        .iter()
        .filter(|item| item.event.instance_id == created.id)
        .collect();
    assert_eq!(mine.len(), 1, "{claimed:?}");
    assert_eq!(mine[0].event.kind, CallbackKind::OnApproved);
    assert_eq!(mine[0].event.status, InstanceStatus::Approved);
    assert_eq!(mine[0].event.decided_by, Some(uid(3)));
    assert_eq!(mine[0].event.step, None);
    assert_eq!(mine[0].sequence, 1);
    // It is not active: the same entity can be triggered again.
    let again = refund(1, at(9, 0, 2)).await.unwrap();
    assert_ne!(again.id, created.id);
    // But while the entity has an open instance, a trigger that would skip every step is
    // refused like any other second trigger, rather than approved beside it.
    let open = trigger(
        &*store,
        request(
            "booking.refund_requested",
            "booking",
            2,
            3,
            Some(json!({"amount": 500})),
        ),
        at(9, 0, 3),
    )
    .await
    .unwrap();
    assert_eq!(open.status, InstanceStatus::InProgress);
    match refund(2, at(9, 0, 4)).await {
        Err(WorkflowError::InstanceAlreadyActive { existing }) => {
            assert_eq!(existing, open.id.get())
        }
        other => panic!("expected instance_already_active, got {other:?}"),
    }
}
