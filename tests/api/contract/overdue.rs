//! Contract: due dates. A step's rule is stored with the template and each version, copied to
//! the instance, and its `due_at` set when the step is activated; the overdue steps are listed
//! from the due time on, and handling one (under the instance lock) marks it once, writes
//! `step.overdue`, and applies the rule: notify, escalate (new eligible users, their inbox,
//! `step_escalated`, a new `step.awaiting_action`) or reject (by the system, no actor). The
//! audit trail verifies afterwards.

use std::sync::Arc;

use approvals::domain::audit_chain;
use approvals::domain::machine;
use approvals::domain::model::{
    AuditAction, AuditVerification, CallbackKind, Done, DueIn, DueRule, Instance, InstanceStatus,
    NewTemplate, OnOverdue, OutboxItem, OverdueStep, StepStatus, TemplateUpdate, UserId,
};
use chrono::{DateTime, TimeDelta, Utc};

use super::{ContractStore, approve, start};
use crate::fixtures::{at, by_role, by_user, entity_type, event, far_future, role, step, uid};

contract_tests! {
    case_due_rules_are_stored_and_due_at_is_set_on_activation =>
        memory_due_rules_are_stored_and_due_at_is_set_on_activation,
        postgres_due_rules_are_stored_and_due_at_is_set_on_activation;
    case_a_notify_step_is_listed_when_due_and_handled_once =>
        memory_a_notify_step_is_listed_when_due_and_handled_once,
        postgres_a_notify_step_is_listed_when_due_and_handled_once;
    case_an_escalated_step_gains_the_role_members =>
        memory_an_escalated_step_gains_the_role_members,
        postgres_an_escalated_step_gains_the_role_members;
    case_a_rejecting_step_rejects_the_instance_as_the_system =>
        memory_a_rejecting_step_rejects_the_instance_as_the_system,
        postgres_a_rejecting_step_rejects_the_instance_as_the_system;
}

const REVIEW: &str = "unit.review_requested";

fn rule(due_in: &str, on_overdue: OnOverdue) -> Option<DueRule> {
    Some(DueRule {
        due_in: DueIn::parse(due_in).unwrap(),
        on_overdue,
    })
}

/// Directors 31 and 32 (32 inactive); a template for [`REVIEW`] whose step 1 (user 2) is due
/// in an hour under `first` and step 2 (user 3) in a day under `reject`; returns it as stored.
async fn setup<S: ContractStore>(
    store: &S,
    first: OnOverdue,
) -> approvals::domain::model::Template {
    for id in [31, 32] {
        store.add_user(uid(id), &format!("Director {id}")).await;
        store.set_user_roles(uid(id), &[role("director")]).await;
    }
    let mut inactive = store.user(uid(32)).await.unwrap().unwrap();
    inactive.active = false;
    store.put_user(inactive).await.unwrap();

    let mut one = step(1, "Review", by_user(2));
    one.due = rule("PT1H", first);
    let mut two = step(2, "Sign-off", by_user(3));
    two.due = rule("P1D", OnOverdue::Reject);
    store
        .create_template(
            NewTemplate {
                name: "Unit review".to_owned(),
                event: event(REVIEW),
                entity_type: entity_type("unit"),
                is_active: true,
                forbid_self_approval: false,
                steps: vec![one, two],
            },
            None,
        )
        .await
        .and_then(Done::unkeyed)
        .unwrap()
}

/// Handles `instance`'s step `index` as the scheduler does at `now`.
async fn handle<S: ContractStore>(
    store: &S,
    instance: &Instance,
    index: usize,
    escalate_to: &[UserId],
    now: DateTime<Utc>,
) -> Option<Instance> {
    let step = &instance.steps[index];
    let members = escalate_to.to_vec();
    let step_id = step.id;
    store
        .handle_overdue(
            OverdueStep {
                instance_id: instance.id,
                step_id,
                escalate_to: step
                    .due
                    .as_ref()
                    .and_then(|d| d.on_overdue.escalate_to().cloned()),
            },
            Box::new(move |i: &Instance| machine::overdue(i, step_id, &members, now)),
        )
        .await
        .unwrap()
}

/// The undelivered events of `instance`, in sequence order (they stay leased afterwards).
async fn events_of<S: ContractStore>(store: &S, instance: &Instance) -> Vec<OutboxItem> {
    let mut mine: Vec<OutboxItem> = store
        .claim_callbacks(
            far_future(),
            far_future() + TimeDelta::seconds(1),
            500,
            None,
        )
        .await
        .unwrap()
        .into_iter()
        .filter(|item| item.event.instance_id == instance.id)
        .collect();
    mine.sort_by_key(|item| item.sequence);
    mine
}

fn assert_verifies(instance: &Instance) {
    assert!(
        matches!(
            audit_chain::verify(instance),
            AuditVerification::Valid { .. }
        ),
        "{:?}",
        instance.audit
    );
}

async fn case_due_rules_are_stored_and_due_at_is_set_on_activation<S: ContractStore>(
    store: Arc<S>,
) {
    let template = setup(
        &*store,
        OnOverdue::Escalate {
            to: by_role("director"),
        },
    )
    .await;
    let read = store.template(template.id).await.unwrap();
    assert_eq!(read, template);
    assert_eq!(
        read.steps[0].due,
        rule(
            "PT1H",
            OnOverdue::Escalate {
                to: by_role("director")
            }
        )
    );
    assert_eq!(
        store.template_version(template.id, 1).await.unwrap(),
        template
    );

    // A new version with another rule; version 1 reads back as it was.
    let mut steps = template.steps.clone();
    steps[0].due = rule("PT30M", OnOverdue::Notify);
    steps[1].due = None;
    let v2 = store
        .publish_version(
            template.id,
            TemplateUpdate {
                name: None,
                is_active: None,
                forbid_self_approval: None,
                steps: Some(steps.clone()),
            },
            None,
        )
        .await
        .and_then(Done::unkeyed)
        .unwrap();
    assert_eq!(v2.steps, steps);
    assert_eq!(store.template_version(template.id, 2).await.unwrap(), v2);
    assert_eq!(
        store.template_version(template.id, 1).await.unwrap(),
        template
    );

    let created = start(&*store, REVIEW, "unit", 5, 1, at(9, 0, 0))
        .await
        .unwrap();
    assert_eq!(created.steps[0].due, rule("PT30M", OnOverdue::Notify));
    assert_eq!(created.steps[0].due_at, Some(at(9, 30, 0)));
    assert_eq!(created.steps[1].due, None);
    assert_eq!(created.steps[1].due_at, None);
    assert_eq!(store.instance(created.id).await.unwrap(), created);

    // A step with a rule activated by a decision: its clock starts then.
    let mut steps = v2.steps.clone();
    steps[1].due = rule("P1D", OnOverdue::Reject);
    store
        .publish_version(
            template.id,
            TemplateUpdate {
                name: None,
                is_active: None,
                forbid_self_approval: None,
                steps: Some(steps),
            },
            None,
        )
        .await
        .unwrap();
    let second = start(&*store, REVIEW, "unit", 6, 1, at(9, 0, 0))
        .await
        .unwrap();
    let approved = approve(&*store, second.steps[0].id, 2, None, at(10, 0, 0))
        .await
        .unwrap();
    assert_eq!(approved.steps[1].status, StepStatus::AwaitingAction);
    assert_eq!(
        approved.steps[1].due_at,
        Some(at(10, 0, 0) + TimeDelta::days(1))
    );
    assert_eq!(store.instance(second.id).await.unwrap(), approved);
}

async fn case_a_notify_step_is_listed_when_due_and_handled_once<S: ContractStore>(store: Arc<S>) {
    setup(&*store, OnOverdue::Notify).await;
    let created = start(&*store, REVIEW, "unit", 5, 1, at(9, 0, 0))
        .await
        .unwrap();
    let due_at = at(10, 0, 0);
    assert_eq!(created.steps[0].due_at, Some(due_at));

    let early = due_at - TimeDelta::microseconds(1);
    assert_eq!(store.overdue_steps(early, 10).await.unwrap(), vec![]);
    let listed = store.overdue_steps(due_at, 10).await.unwrap();
    assert_eq!(
        listed,
        vec![OverdueStep {
            instance_id: created.id,
            step_id: created.steps[0].id,
            escalate_to: None,
        }]
    );
    // Not yet due: the machine changes nothing, and nothing is written.
    assert_eq!(handle(&*store, &created, 0, &[], early).await, None);
    assert_eq!(store.instance(created.id).await.unwrap(), created);

    let handled = handle(&*store, &created, 0, &[], due_at).await.unwrap();
    assert_eq!(handled.steps[0].overdue_at, Some(due_at));
    assert_eq!(handled.steps[0].status, StepStatus::AwaitingAction);
    assert_eq!(handled.audit, created.audit);
    assert_eq!(store.instance(created.id).await.unwrap(), handled);
    // Handled once: no longer listed, and a second attempt writes nothing.
    assert_eq!(store.overdue_steps(far_future(), 10).await.unwrap(), vec![]);
    assert_eq!(handle(&*store, &handled, 0, &[], at(11, 0, 0)).await, None);

    let events = events_of(&*store, &created).await;
    let kinds: Vec<_> = events.iter().map(|e| (e.event.kind, e.sequence)).collect();
    assert_eq!(
        kinds,
        vec![
            (CallbackKind::StepAwaitingAction, 1),
            (CallbackKind::StepOverdue, 2)
        ]
    );
    assert_eq!(events[1].event.decided_by, None);
    assert_eq!(events[1].event.at, due_at);
    // The user can still decide the step.
    let approved = approve(&*store, created.steps[0].id, 2, None, at(11, 0, 0))
        .await
        .unwrap();
    assert_eq!(approved.steps[0].status, StepStatus::Approved);
    assert_verifies(&store.instance(created.id).await.unwrap());
}

async fn case_an_escalated_step_gains_the_role_members<S: ContractStore>(store: Arc<S>) {
    setup(
        &*store,
        OnOverdue::Escalate {
            to: by_role("director"),
        },
    )
    .await;
    let created = start(&*store, REVIEW, "unit", 5, 1, at(9, 0, 0))
        .await
        .unwrap();
    let listed = store.overdue_steps(at(10, 0, 1), 10).await.unwrap();
    assert_eq!(listed[0].escalate_to, Some(by_role("director")));
    // Resolved as the scheduler does: the active members only.
    let members = store
        .eligible_users(&[by_role("director")])
        .await
        .unwrap()
        .remove(0);
    assert_eq!(members, vec![uid(31)]);
    assert!(
        store
            .pending_steps(uid(31), 50, None)
            .await
            .unwrap()
            .is_empty()
    );

    let now = at(10, 0, 1);
    let escalated = handle(&*store, &created, 0, &members, now).await.unwrap();
    assert_eq!(escalated.steps[0].eligible_user_ids, vec![uid(2), uid(31)]);
    let last = escalated.audit.last().unwrap();
    assert_eq!(last.action, AuditAction::StepEscalated);
    assert_eq!(last.actor_user_id, None);
    assert_eq!(last.step_id, Some(created.steps[0].id));
    assert_eq!(last.comment.as_deref(), Some("added users 31"));
    let stored = store.instance(created.id).await.unwrap();
    assert_eq!(stored, escalated);
    assert_verifies(&stored);

    // The new approver sees the step, and may decide it.
    let inbox = store.pending_steps(uid(31), 50, None).await.unwrap();
    assert_eq!(inbox.len(), 1);
    assert_eq!(inbox[0].step_id, created.steps[0].id);
    let events = events_of(&*store, &created).await;
    let kinds: Vec<_> = events.iter().map(|e| e.event.kind).collect();
    assert_eq!(
        kinds,
        vec![
            CallbackKind::StepAwaitingAction,
            CallbackKind::StepOverdue,
            CallbackKind::StepAwaitingAction
        ]
    );
    assert_eq!(
        events[2].event.step.as_ref().unwrap().eligible_user_ids,
        vec![uid(2), uid(31)]
    );
    let approved = approve(&*store, created.steps[0].id, 31, Some("ok"), at(10, 5, 0))
        .await
        .unwrap();
    assert_eq!(approved.steps[0].status, StepStatus::Approved);
    assert_verifies(&store.instance(created.id).await.unwrap());
}

async fn case_a_rejecting_step_rejects_the_instance_as_the_system<S: ContractStore>(store: Arc<S>) {
    setup(&*store, OnOverdue::Reject).await;
    let created = start(&*store, REVIEW, "unit", 5, 1, at(9, 0, 0))
        .await
        .unwrap();
    let now = at(10, 0, 2);
    let rejected = handle(&*store, &created, 0, &[], now).await.unwrap();
    assert_eq!(rejected.status, InstanceStatus::Rejected);
    assert_eq!(rejected.completed_at, Some(now));
    assert_eq!(rejected.steps[0].status, StepStatus::Rejected);
    assert_eq!(rejected.steps[0].acted_by_user_id, None);
    assert_eq!(rejected.steps[0].comment.as_deref(), Some("overdue"));
    assert_eq!(rejected.steps[1].status, StepStatus::Cancelled);
    let tail: Vec<_> = rejected.audit[created.audit.len()..]
        .iter()
        .map(|a| (a.action, a.actor_user_id, a.comment.as_deref()))
        .collect();
    assert_eq!(
        tail,
        vec![
            (AuditAction::StepRejected, None, Some("overdue")),
            (AuditAction::InstanceRejected, None, Some("overdue")),
        ]
    );
    let stored = store.instance(created.id).await.unwrap();
    assert_eq!(stored, rejected);
    assert_verifies(&stored);
    assert!(
        store
            .pending_steps(uid(2), 50, None)
            .await
            .unwrap()
            .is_empty()
    );
    // The entity is free again: a new instance can start.
    start(&*store, REVIEW, "unit", 5, 1, at(11, 0, 0))
        .await
        .unwrap();

    let events = events_of(&*store, &created).await;
    let kinds: Vec<_> = events
        .iter()
        .map(|e| (e.event.kind, e.event.status))
        .collect();
    assert_eq!(
        kinds,
        vec![
            (CallbackKind::StepAwaitingAction, InstanceStatus::InProgress),
            (CallbackKind::StepOverdue, InstanceStatus::Rejected),
            (CallbackKind::OnRejected, InstanceStatus::Rejected),
        ]
    );
    assert!(events[1..].iter().all(|e| e.event.decided_by.is_none()));
    assert_eq!(events[2].event.comment.as_deref(), Some("overdue"));
}
