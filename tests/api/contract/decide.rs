//! Contract: a decision moves the instance along (next step, approval, rejection with the later
//! steps cancelled) and every refusal writes nothing.

use approvals::domain::model::Done;
use std::sync::Arc;

use approvals::domain::WorkflowError;
use approvals::domain::model::{AuditAction, Instance, InstanceStatus, StepId, StepStatus};
use approvals::domain::ports::ActFn;

use super::{
    ContractStore, approve, assert_audit_well_formed, assert_no_callbacks, audit_summary, reject,
    start, step_ids,
};
use crate::fixtures::{CANCELLATION, at, uid};

contract_tests! {
    case_decide_transitions_and_refusals =>
        memory_decide_transitions_and_refusals, postgres_decide_transitions_and_refusals;
}

async fn case_decide_transitions_and_refusals<S: ContractStore>(store: Arc<S>) {
    let t0 = at(11, 0, 0);
    let created = start(&*store, CANCELLATION, "booking", 3, 3, t0)
        .await
        .unwrap();
    let (s1, s2) = step_ids(&created);

    // Refusals write nothing.
    let wrong_user = approve(&*store, s1, 2, None, at(11, 1, 0)).await;
    assert_eq!(
        wrong_user.unwrap_err(),
        WorkflowError::NotAnApprover {
            user: uid(2),
            step: s1.get()
        }
    );
    let not_reached = approve(&*store, s2, 2, None, at(11, 1, 0)).await;
    assert_eq!(
        not_reached.unwrap_err(),
        WorkflowError::StepNotActionable {
            step: s2.get(),
            status: StepStatus::Pending
        }
    );
    let refusal: ActFn = Box::new(|_: &Instance, _, _| {
        Err(WorkflowError::validation("comment", "refused by the test"))
    });
    assert_eq!(
        store
            .decide(s1, uid(1), refusal, None)
            .await
            .and_then(Done::unkeyed)
            .unwrap_err(),
        WorkflowError::validation("comment", "refused by the test")
    );
    assert_eq!(store.instance(created.id).await.unwrap(), created);
    assert_no_callbacks(&*store).await;

    let unknown = StepId::new(s2.get() + 10_000).unwrap();
    assert!(
        matches!(
            approve(&*store, unknown, 1, None, at(11, 1, 0)).await,
            Err(WorkflowError::NotFound { .. })
        ),
        "unknown step id"
    );

    // Approve step 1: step 2 becomes actionable.
    let t1 = at(11, 2, 0);
    let after_first = approve(&*store, s1, 1, Some("looks fine"), t1)
        .await
        .unwrap();
    assert_eq!(after_first.id, created.id);
    assert_eq!(after_first.status, InstanceStatus::InProgress);
    assert_eq!(after_first.updated_at, t1);
    assert_eq!(after_first.completed_at, None);
    assert_eq!(after_first.created_at, t0);
    let step1 = &after_first.steps[0];
    assert_eq!(step1.status, StepStatus::Approved);
    assert_eq!(step1.acted_by_user_id, Some(uid(1)));
    assert_eq!(step1.comment.as_deref(), Some("looks fine"));
    assert_eq!(step1.acted_at, Some(t1));
    assert_eq!(step1.activated_at, Some(t0));
    let step2 = &after_first.steps[1];
    assert_eq!(step2.status, StepStatus::AwaitingAction);
    assert_eq!(step2.activated_at, Some(t1));
    assert_eq!(step2.acted_by_user_id, None);
    assert_eq!(
        audit_summary(&after_first),
        vec![
            (AuditAction::InstanceCreated, None, Some(uid(3))),
            (AuditAction::StepActivated, Some(s1), None),
            (AuditAction::StepApproved, Some(s1), Some(uid(1))),
            (AuditAction::StepActivated, Some(s2), None),
        ]
    );
    assert_eq!(after_first.audit[2].comment.as_deref(), Some("looks fine"));
    assert_eq!(after_first.audit[2].at, t1);
    assert_eq!(after_first.audit[3].at, t1);
    assert_audit_well_formed(&after_first);
    assert_eq!(store.instance(created.id).await.unwrap(), after_first);
    assert_no_callbacks(&*store).await;

    // The decided step can't be decided again; a wrong user on the last step writes nothing.
    assert_eq!(
        approve(&*store, s1, 1, None, at(11, 3, 0))
            .await
            .unwrap_err(),
        WorkflowError::StepNotActionable {
            step: s1.get(),
            status: StepStatus::Approved
        }
    );
    assert_eq!(
        reject(&*store, s2, 1, "no", at(11, 3, 0))
            .await
            .unwrap_err(),
        WorkflowError::NotAnApprover {
            user: uid(1),
            step: s2.get()
        }
    );
    assert_eq!(store.instance(created.id).await.unwrap(), after_first);
    assert_no_callbacks(&*store).await;

    // Approve the last step: the instance is approved.
    let t2 = at(11, 4, 0);
    let approved = approve(&*store, s2, 2, None, t2).await.unwrap();
    assert_eq!(approved.status, InstanceStatus::Approved);
    assert_eq!(approved.updated_at, t2);
    assert_eq!(approved.completed_at, Some(t2));
    assert_eq!(approved.steps[1].status, StepStatus::Approved);
    assert_eq!(approved.steps[1].acted_by_user_id, Some(uid(2)));
    assert_eq!(approved.steps[1].comment, None);
    assert_eq!(approved.steps[1].acted_at, Some(t2));
    assert_eq!(approved.steps[0], after_first.steps[0]);
    assert_eq!(
        audit_summary(&approved)[4..],
        [
            (AuditAction::StepApproved, Some(s2), Some(uid(2))),
            (AuditAction::InstanceApproved, None, Some(uid(2))),
        ]
    );
    assert_eq!(store.instance(created.id).await.unwrap(), approved);
    assert_eq!(
        approve(&*store, s2, 2, None, at(11, 5, 0))
            .await
            .unwrap_err(),
        WorkflowError::StepNotActionable {
            step: s2.get(),
            status: StepStatus::Approved
        }
    );

    // Reject step 1 of another instance: later steps are cancelled.
    let other = start(&*store, CANCELLATION, "booking", 4, 3, at(11, 6, 0))
        .await
        .unwrap();
    let (o1, o2) = step_ids(&other);
    let t3 = at(11, 7, 0);
    let rejected = reject(&*store, o1, 1, "customer changed their mind", t3)
        .await
        .unwrap();
    assert_eq!(rejected.status, InstanceStatus::Rejected);
    assert_eq!(rejected.completed_at, Some(t3));
    assert_eq!(rejected.steps[0].status, StepStatus::Rejected);
    assert_eq!(
        rejected.steps[0].comment.as_deref(),
        Some("customer changed their mind")
    );
    assert_eq!(rejected.steps[0].acted_by_user_id, Some(uid(1)));
    assert_eq!(rejected.steps[1].status, StepStatus::Cancelled);
    assert_eq!(rejected.steps[1].acted_by_user_id, None);
    assert_eq!(
        audit_summary(&rejected)[2..],
        [
            (AuditAction::StepRejected, Some(o1), Some(uid(1))),
            (AuditAction::InstanceRejected, None, Some(uid(1))),
        ]
    );
    assert_eq!(store.instance(other.id).await.unwrap(), rejected);
    assert_eq!(
        approve(&*store, o2, 2, None, at(11, 8, 0))
            .await
            .unwrap_err(),
        WorkflowError::StepNotActionable {
            step: o2.get(),
            status: StepStatus::Cancelled
        }
    );
    // The first instance is untouched by decisions on the second.
    assert_eq!(store.instance(created.id).await.unwrap(), approved);
}
