//! Tests of segregation of duties in `machine::trigger` (domain core): a template that forbids
//! self-approval leaves the initiator out of every step's snapshot, and a step left with nobody
//! is refused; a template that allows it keeps the snapshots as resolved.

use super::fixtures::{now, template, trigger_request, uid};
use crate::domain::error::WorkflowError;
use crate::domain::machine::{decide, trigger};
use crate::domain::model::{
    Comment, DecisionRequest, Instance, InstanceId, InstanceStep, StepId, Template, Verdict,
};

/// `template()` (role `sales_manager`, then user 2) with self-approval forbidden.
fn strict() -> Template {
    Template {
        forbid_self_approval: true,
        ..template()
    }
}

#[test]
fn the_initiator_is_left_out_of_every_snapshot() {
    // User 3 starts it and holds the role of step 1 beside user 1.
    let new = trigger(
        &strict(),
        trigger_request(),
        vec![vec![uid(3), uid(1)], vec![uid(2)]],
        now(),
    )
    .unwrap();

    assert_eq!(new.initiated_by, uid(3));
    assert_eq!(new.steps[0].eligible_user_ids, vec![uid(1)]);
    assert_eq!(new.steps[1].eligible_user_ids, vec![uid(2)]);
}

#[test]
fn without_the_flag_the_initiator_stays_eligible() {
    let new = trigger(
        &template(),
        trigger_request(),
        vec![vec![uid(3), uid(1)], vec![uid(2)]],
        now(),
    )
    .unwrap();

    assert_eq!(new.steps[0].eligible_user_ids, vec![uid(1), uid(3)]);
}

#[test]
fn a_step_left_with_only_the_initiator_has_no_eligible_approver() {
    // User 2 starts it: step 2 names user 2 directly, so nobody is left for it.
    let mut request = trigger_request();
    request.initiated_by = uid(2);

    let err = trigger(&strict(), request, vec![vec![uid(1)], vec![uid(2)]], now()).unwrap_err();

    assert_eq!(
        err,
        WorkflowError::NoEligibleApprover {
            approver: "user 2 without the initiator, as self-approval is forbidden".to_owned(),
            step_order: 2,
        }
    );
}

#[test]
fn a_role_held_by_the_initiator_alone_has_no_eligible_approver() {
    let err = trigger(
        &strict(),
        trigger_request(),
        vec![vec![uid(3), uid(3)], vec![uid(2)]],
        now(),
    )
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

#[test]
fn a_role_nobody_holds_is_described_as_before() {
    let err = trigger(
        &strict(),
        trigger_request(),
        vec![vec![], vec![uid(2)]],
        now(),
    )
    .unwrap_err();

    assert_eq!(
        err,
        WorkflowError::NoEligibleApprover {
            approver: "role 'sales_manager'".to_owned(),
            step_order: 1,
        }
    );
}

#[test]
fn the_initiator_may_then_not_decide_the_step() {
    let new = trigger(
        &strict(),
        trigger_request(),
        vec![vec![uid(3), uid(1)], vec![uid(2)]],
        now(),
    )
    .unwrap();
    // The instance as a store would hand it back: ids assigned, nothing else changed.
    let steps = new
        .steps
        .iter()
        .enumerate()
        .map(|(index, step)| InstanceStep {
            id: StepId::new(index as i64 + 1).unwrap(),
            step_order: step.step_order,
            name: step.name.clone(),
            approver: step.approver.clone(),
            eligible_user_ids: step.eligible_user_ids.clone(),
            status: step.status,
            acted_by_user_id: None,
            comment: None,
            acted_at: None,
            activated_at: step.activated_at,
            due: None,
            due_at: None,
            overdue_at: None,
            quorum: 1,
            approvals: Vec::new(),
        })
        .collect();
    let instance = Instance {
        id: InstanceId::new(1).unwrap(),
        template_id: new.template_id,
        template_version: new.template_version,
        event: new.event,
        entity_type: new.entity_type,
        entity_id: new.entity_id,
        initiated_by: new.initiated_by,
        status: new.status,
        context: new.context,
        created_at: new.created_at,
        updated_at: new.created_at,
        completed_at: None,
        steps,
        audit: Vec::new(),
    };
    let own = DecisionRequest {
        step_id: StepId::new(1).unwrap(),
        acted_by: uid(3),
        verdict: Verdict::Approve {
            comment: Some(Comment::new("mine").unwrap()),
        },
    };

    assert_eq!(
        decide(&instance, &own, now()).unwrap_err(),
        WorkflowError::NotAnApprover {
            user: uid(3),
            step: 1,
        }
    );
}
