//! Contract: quorum steps. Partial approvals are stored on the step and audited, a repeat is
//! refused, the approval that reaches the quorum approves the step once, and the trail verifies.

use std::sync::Arc;

use approvals::domain::model::{
    AuditAction, AuditVerification, InstanceStatus, Quorum, StepStatus,
};
use approvals::domain::{WorkflowError, audit_chain};

use super::{ContractStore, approve, assert_audit_well_formed, audit_summary, reject, start};
use crate::fixtures::{at, by_role, by_user, role, step, template, uid};

contract_tests! {
    case_a_quorum_step_counts_distinct_approvals =>
        memory_a_quorum_step_counts_distinct_approvals,
        postgres_a_quorum_step_counts_distinct_approvals;
    case_a_quorum_of_all_is_kept_and_resolved_at_trigger =>
        memory_a_quorum_of_all_is_kept_and_resolved_at_trigger,
        postgres_a_quorum_of_all_is_kept_and_resolved_at_trigger;
    case_a_rejection_rejects_a_partly_approved_step =>
        memory_a_rejection_rejects_a_partly_approved_step,
        postgres_a_rejection_rejects_a_partly_approved_step;
}

const BOARD_REVIEW: &str = "booking.board_review_requested";

/// Users 21, 22 and 23 on the board; template 9 needs 2 of them, then user 2.
async fn board<S: ContractStore>(store: &S) {
    for id in [21, 22, 23] {
        store.add_user(uid(id), &format!("Board member {id}")).await;
        store.set_user_roles(uid(id), &[role("board")]).await;
    }
    let mut first = step(1, "Board", by_role("board"));
    first.quorum = Quorum::Count(2);
    store
        .put_template(template(
            9,
            "Board review",
            BOARD_REVIEW,
            "booking",
            true,
            vec![first, step(2, "Finance", by_user(2))],
        ))
        .await;
}

async fn case_a_quorum_step_counts_distinct_approvals<S: ContractStore>(store: Arc<S>) {
    board(&*store).await;
    let created = start(&*store, BOARD_REVIEW, "booking", 3, 3, at(9, 0, 0))
        .await
        .unwrap();
    let (board_step, finance) = (created.steps[0].id, created.steps[1].id);
    assert_eq!(created.steps[0].quorum, 2);
    assert_eq!(created.steps[1].quorum, 1);
    assert!(created.steps[0].approvals.is_empty());

    let partly = approve(&*store, board_step, 22, Some("yes"), at(9, 1, 0))
        .await
        .unwrap();
    assert_eq!(partly.status, InstanceStatus::InProgress);
    assert_eq!(partly.steps[0].status, StepStatus::AwaitingAction);
    assert_eq!(partly.steps[0].approvals.len(), 1);
    assert_eq!(partly.steps[0].approvals[0].user_id, uid(22));
    assert_eq!(partly.steps[0].approvals[0].comment.as_deref(), Some("yes"));
    assert_eq!(partly.steps[0].approvals[0].at, at(9, 1, 0));
    assert_eq!(store.instance(partly.id).await.unwrap(), partly);
    // The one who approved has done their part; the others still see the step.
    assert!(
        store
            .pending_steps(uid(22), 50, None)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        store.pending_steps(uid(21), 50, None).await.unwrap().len(),
        1
    );

    assert_eq!(
        approve(&*store, board_step, 22, None, at(9, 2, 0)).await,
        Err(WorkflowError::AlreadyApproved {
            user: uid(22),
            step: board_step.get()
        })
    );

    let approved = approve(&*store, board_step, 21, None, at(9, 3, 0))
        .await
        .unwrap();
    assert_eq!(approved.steps[0].status, StepStatus::Approved);
    assert_eq!(approved.steps[0].acted_by_user_id, Some(uid(21)));
    assert_eq!(approved.steps[0].approvals.len(), 2);
    assert_eq!(approved.steps[1].status, StepStatus::AwaitingAction);
    assert_eq!(store.instance(approved.id).await.unwrap(), approved);
    assert_eq!(
        audit_summary(&approved)[2..],
        [
            (
                AuditAction::ApprovalRecorded,
                Some(board_step),
                Some(uid(22))
            ),
            (
                AuditAction::ApprovalRecorded,
                Some(board_step),
                Some(uid(21))
            ),
            (AuditAction::StepApproved, Some(board_step), Some(uid(21))),
            (AuditAction::StepActivated, Some(finance), None),
        ]
    );
    assert_audit_well_formed(&approved);
    assert_eq!(
        audit_chain::verify(&store.instance(approved.id).await.unwrap()),
        AuditVerification::Valid {
            entries: approved.audit.len()
        }
    );
    // The third board member comes too late.
    assert!(matches!(
        approve(&*store, board_step, 23, None, at(9, 4, 0)).await,
        Err(WorkflowError::StepNotActionable { .. })
    ));
}

async fn case_a_rejection_rejects_a_partly_approved_step<S: ContractStore>(store: Arc<S>) {
    board(&*store).await;
    let created = start(&*store, BOARD_REVIEW, "booking", 3, 3, at(9, 0, 0))
        .await
        .unwrap();
    let board_step = created.steps[0].id;
    approve(&*store, board_step, 23, None, at(9, 1, 0))
        .await
        .unwrap();
    assert_eq!(
        reject(&*store, board_step, 23, "no after all", at(9, 2, 0)).await,
        Err(WorkflowError::AlreadyApproved {
            user: uid(23),
            step: board_step.get()
        })
    );
    let rejected = reject(&*store, board_step, 21, "too costly", at(9, 3, 0))
        .await
        .unwrap();
    assert_eq!(rejected.status, InstanceStatus::Rejected);
    assert_eq!(rejected.steps[0].status, StepStatus::Rejected);
    assert_eq!(rejected.steps[0].approvals.len(), 1);
    assert_eq!(rejected.steps[1].status, StepStatus::Cancelled);
    assert_eq!(store.instance(rejected.id).await.unwrap(), rejected);
    assert_eq!(
        audit_chain::verify(&store.instance(rejected.id).await.unwrap()),
        AuditVerification::Valid {
            entries: rejected.audit.len()
        }
    );
}

async fn case_a_quorum_of_all_is_kept_and_resolved_at_trigger<S: ContractStore>(store: Arc<S>) {
    board(&*store).await;
    let mut whole = step(1, "Whole board", by_role("board"));
    whole.quorum = Quorum::All;
    let all = template(
        10,
        "Whole board",
        "booking.whole_board_requested",
        "booking",
        true,
        vec![whole, step(2, "Finance", by_user(2))],
    );
    store.put_template(all.clone()).await;
    assert_eq!(store.template(all.id).await.unwrap(), all);
    let created = start(
        &*store,
        "booking.whole_board_requested",
        "booking",
        3,
        3,
        at(9, 0, 0),
    )
    .await
    .unwrap();
    assert_eq!(created.steps[0].quorum, 3);
    assert_eq!(created.steps[1].quorum, 1);
}
