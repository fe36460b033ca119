//! Contract: the inbox (`pending_steps`) lists the steps awaiting a user by the eligibility
//! snapshot taken at trigger time, oldest activation first, and role changes don't reach it.

use std::sync::Arc;

use approvals::domain::WorkflowError;
use approvals::domain::model::{InboxCursor, StepStatus};

use super::{ContractStore, approve, pending_line, start};
use crate::fixtures::{CANCELLATION, COMMISSION, PRICE_UPDATE, at, by_role, role, uid};

contract_tests! {
    case_pending_steps_follow_the_snapshot =>
        memory_pending_steps_follow_the_snapshot, postgres_pending_steps_follow_the_snapshot;
    case_pages_start_after_the_cursor =>
        memory_pages_start_after_the_cursor, postgres_pages_start_after_the_cursor;
}

/// A page starts just after its cursor, in (activation time, step id) order: steps activated at
/// the same instant are told apart by id, and a step decided between two pages neither shifts
/// the next page nor is repeated.
async fn case_pages_start_after_the_cursor<S: ContractStore>(store: Arc<S>) {
    // Two pairs activated at the same instant, one later.
    let a = start(&*store, CANCELLATION, "booking", 1, 3, at(9, 0, 0))
        .await
        .unwrap();
    let b = start(&*store, CANCELLATION, "booking", 2, 3, at(9, 0, 0))
        .await
        .unwrap();
    let c = start(&*store, PRICE_UPDATE, "unit", 1, 3, at(9, 5, 0))
        .await
        .unwrap();
    let d = start(&*store, PRICE_UPDATE, "unit", 2, 3, at(9, 5, 0))
        .await
        .unwrap();
    let e = start(&*store, CANCELLATION, "booking", 3, 3, at(9, 9, 0))
        .await
        .unwrap();
    let all = vec![
        pending_line(&a, 1),
        pending_line(&b, 1),
        pending_line(&c, 1),
        pending_line(&d, 1),
        pending_line(&e, 1),
    ];
    let page = |after: Option<InboxCursor>, limit: u32| {
        let store = Arc::clone(&store);
        async move { store.pending_steps(uid(1), limit, after).await.unwrap() }
    };
    assert_eq!(page(None, 50).await, all);

    // After each step in turn, whatever the page size: exactly the steps that follow it.
    for (i, step) in all.iter().enumerate() {
        let cursor = InboxCursor::after(step);
        assert!(cursor.is_some(), "an awaiting step has its activation time");
        assert_eq!(page(cursor, 50).await, all[i + 1..], "after step {i}");
        assert_eq!(
            page(cursor, 1).await,
            all[i + 1..].iter().take(1).cloned().collect::<Vec<_>>(),
            "one after step {i}"
        );
    }

    // Step b is decided between the first page (a, b) and the second: the second is still c, d.
    let first = page(None, 2).await;
    assert_eq!(first, all[..2]);
    approve(&*store, b.steps[0].id, 1, None, at(9, 30, 0))
        .await
        .unwrap();
    assert_eq!(page(InboxCursor::after(&first[1]), 2).await, all[2..4]);
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
        async move { store.pending_steps(uid(user), limit, None).await.unwrap() }
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
