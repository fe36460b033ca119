//! Contract: the inbox (`pending_steps`) lists the steps awaiting a user by the eligibility
//! snapshot taken at trigger time, oldest activation first, and role changes don't reach it.

use std::sync::Arc;

use approvals::domain::WorkflowError;
use approvals::domain::model::StepStatus;

use super::{ContractStore, approve, pending_line, start};
use crate::fixtures::{CANCELLATION, COMMISSION, PRICE_UPDATE, at, by_role, role, uid};

contract_tests! {
    case_pending_steps_follow_the_snapshot =>
        memory_pending_steps_follow_the_snapshot, postgres_pending_steps_follow_the_snapshot;
}

async fn case_pending_steps_follow_the_snapshot<S: ContractStore>(store: Arc<S>) {
    store.add_user(uid(50), "Late Joiner").await;

    let i1 = start(&*store, CANCELLATION, "booking", 1, 3, at(14, 0, 0))
        .await
        .unwrap();
    let i2 = start(&*store, PRICE_UPDATE, "unit", 2, 3, at(14, 1, 0))
        .await
        .unwrap();
    let i3 = start(&*store, COMMISSION, "commission", 3, 3, at(14, 2, 0))
        .await
        .unwrap();
    // Created last, activated first: the inbox orders by activation, not by id.
    let i4 = start(&*store, CANCELLATION, "booking", 2, 3, at(13, 59, 0))
        .await
        .unwrap();

    let inbox = |user: i64, limit: u32| {
        let store = Arc::clone(&store);
        async move { store.pending_steps(uid(user), limit).await.unwrap() }
    };

    assert_eq!(
        inbox(1, 50).await,
        vec![
            pending_line(&i4, 1),
            pending_line(&i1, 1),
            pending_line(&i2, 1)
        ]
    );
    assert_eq!(
        inbox(1, 2).await,
        vec![pending_line(&i4, 1), pending_line(&i1, 1)]
    );
    assert_eq!(inbox(1, 1).await, vec![pending_line(&i4, 1)]);
    assert_eq!(inbox(2, 50).await, vec![pending_line(&i3, 1)]);
    assert_eq!(inbox(3, 50).await, vec![]);
    assert_eq!(inbox(50, 50).await, vec![]);
    assert_eq!(inbox(999, 50).await, vec![]);

    // A decided step leaves the inbox; the next step (a direct user step) enters its user's.
    let i3 = approve(&*store, i3.steps[0].id, 2, None, at(14, 10, 0))
        .await
        .unwrap();
    assert_eq!(inbox(2, 50).await, vec![]);
    assert_eq!(
        inbox(1, 50).await,
        vec![
            pending_line(&i4, 1),
            pending_line(&i1, 1),
            pending_line(&i2, 1),
            pending_line(&i3, 2)
        ]
    );
    let i2 = approve(&*store, i2.steps[0].id, 1, None, at(14, 11, 0))
        .await
        .unwrap();
    assert_eq!(inbox(2, 50).await, vec![pending_line(&i2, 2)]);
    assert_eq!(
        inbox(1, 50).await,
        vec![
            pending_line(&i4, 1),
            pending_line(&i1, 1),
            pending_line(&i3, 2)
        ]
    );

    // Role changes after creation change neither the inbox nor who may act.
    store.set_user_roles(uid(1), &[]).await;
    store
        .set_user_roles(uid(50), &[role("sales_manager")])
        .await;
    assert_eq!(
        store
            .eligible_users(&[by_role("sales_manager")])
            .await
            .unwrap(),
        vec![vec![uid(50)]],
        "the role changed now"
    );
    assert_eq!(
        inbox(1, 50).await,
        vec![
            pending_line(&i4, 1),
            pending_line(&i1, 1),
            pending_line(&i3, 2)
        ]
    );
    assert_eq!(inbox(50, 50).await, vec![]);
    assert_eq!(
        approve(&*store, i1.steps[0].id, 50, None, at(14, 12, 0))
            .await
            .unwrap_err(),
        WorkflowError::NotAnApprover {
            user: uid(50),
            step: i1.steps[0].id.get()
        }
    );
    let i1 = approve(&*store, i1.steps[0].id, 1, None, at(14, 13, 0))
        .await
        .unwrap();
    assert_eq!(i1.steps[0].status, StepStatus::Approved);
    assert_eq!(
        inbox(1, 50).await,
        vec![pending_line(&i4, 1), pending_line(&i3, 2)]
    );
    assert_eq!(
        inbox(2, 50).await,
        vec![pending_line(&i2, 2), pending_line(&i1, 2)]
    );
}
