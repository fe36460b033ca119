//! Contract: delegations (`RoleResolver::put_delegation` and friends) and what they lend a
//! delegate in the decision's unit of work and in the inbox. Each store judges a delegation at
//! the time it is given (the service's clock), keeps one per user, refuses a cycle, and hands a
//! decision the delegations to an actor missing from the step's snapshot.

use std::sync::Arc;

use approvals::domain::model::Done;
use approvals::domain::model::{
    AuditAction, AuditVerification, Comment, DecisionRequest, Delegation, Instance, Quorum, StepId,
    StepStatus, Verdict,
};
use approvals::domain::ports::ActFn;
use approvals::domain::{WorkflowError, audit_chain, machine};
use chrono::{DateTime, Utc};

use super::{ContractStore, start};
use crate::fixtures::{CANCELLATION, at, by_role, by_user, role, step, template, uid, user};

contract_tests! {
    case_a_delegation_is_kept_one_per_user_and_judged_at_the_given_time =>
        memory_a_delegation_is_kept_one_per_user_and_judged_at_the_given_time,
        postgres_a_delegation_is_kept_one_per_user_and_judged_at_the_given_time;
    case_a_delegation_is_refused_for_unknown_inactive_or_cyclic_users =>
        memory_a_delegation_is_refused_for_unknown_inactive_or_cyclic_users,
        postgres_a_delegation_is_refused_for_unknown_inactive_or_cyclic_users;
    case_a_delegate_decides_for_the_delegator_only_while_it_runs =>
        memory_a_delegate_decides_for_the_delegator_only_while_it_runs,
        postgres_a_delegate_decides_for_the_delegator_only_while_it_runs;
    case_a_delegates_inbox_lists_the_delegators_steps_once_and_pages =>
        memory_a_delegates_inbox_lists_the_delegators_steps_once_and_pages,
        postgres_a_delegates_inbox_lists_the_delegators_steps_once_and_pages;
    case_a_delegates_quorum_approval_is_stored_as_the_delegators =>
        memory_a_delegates_quorum_approval_is_stored_as_the_delegators,
        postgres_a_delegates_quorum_approval_is_stored_as_the_delegators;
}

/// `from` lets `to` act for them until `until`, given at 8:00.
fn delegation(from: i64, to: i64, until: DateTime<Utc>) -> Delegation {
    Delegation {
        user_id: uid(from),
        to_user_id: uid(to),
        until,
        reason: Some(Comment::new("Holiday").unwrap()),
        created_at: at(8, 0, 0),
    }
}

/// Users 4 and 5, with no role.
async fn helpers<S: ContractStore>(store: &S) {
    store.add_user(uid(4), "Helper").await;
    store.add_user(uid(5), "Second helper").await;
}

/// An approval by `by` at `now`, as the service hands it over.
async fn approve_as<S: ContractStore>(
    store: &S,
    step: StepId,
    by: i64,
    now: DateTime<Utc>,
) -> Result<Instance, WorkflowError> {
    let request = DecisionRequest {
        step_id: step,
        acted_by: uid(by),
        verdict: Verdict::Approve { comment: None },
    };
    let decide: ActFn = Box::new(move |instance, active, delegations| {
        machine::decide_as(instance, &request, active, delegations, now)
    });
    store
        .decide(step, uid(by), decide, None)
        .await
        .and_then(Done::unkeyed)
}

async fn case_a_delegation_is_kept_one_per_user_and_judged_at_the_given_time<S: ContractStore>(
    store: Arc<S>,
) {
    helpers(&*store).await;
    let until = at(12, 0, 0);
    store
        .put_delegation(delegation(1, 4, until), at(8, 0, 0))
        .await
        .unwrap();
    assert_eq!(
        store.delegation(uid(1), at(11, 0, 0)).await.unwrap(),
        Some(delegation(1, 4, until))
    );
    assert_eq!(
        store.delegators_of(uid(4), at(11, 0, 0)).await.unwrap(),
        vec![uid(1)]
    );
    // At `until` (exclusive) and after, it no longer runs.
    assert_eq!(store.delegation(uid(1), until).await.unwrap(), None);
    assert!(store.delegators_of(uid(4), until).await.unwrap().is_empty());
    assert_eq!(store.delegation(uid(2), at(11, 0, 0)).await.unwrap(), None);

    // A second one replaces the first.
    let mut again = delegation(1, 5, at(13, 0, 0));
    again.reason = None;
    store
        .put_delegation(again.clone(), at(9, 0, 0))
        .await
        .unwrap();
    assert_eq!(
        store.delegation(uid(1), at(11, 0, 0)).await.unwrap(),
        Some(again)
    );
    assert!(
        store
            .delegators_of(uid(4), at(11, 0, 0))
            .await
            .unwrap()
            .is_empty()
    );
    // Several delegators of one delegate, by id.
    store
        .put_delegation(delegation(2, 5, until), at(9, 0, 0))
        .await
        .unwrap();
    assert_eq!(
        store.delegators_of(uid(5), at(11, 0, 0)).await.unwrap(),
        vec![uid(1), uid(2)]
    );
    // An inactive delegator lends nothing.
    store
        .put_user(approvals::domain::model::User {
            active: false,
            ..user(2, "Finance Manager", &["finance_manager"])
        })
        .await
        .unwrap();
    assert_eq!(
        store.delegators_of(uid(5), at(11, 0, 0)).await.unwrap(),
        vec![uid(1)]
    );

    // Ended early: once; then none runs.
    assert!(store.end_delegation(uid(1), at(11, 0, 0)).await.unwrap());
    assert_eq!(store.delegation(uid(1), at(11, 0, 0)).await.unwrap(), None);
    assert!(!store.end_delegation(uid(1), at(11, 0, 0)).await.unwrap());
    // One that has ended is not "running" for DELETE either.
    store
        .put_delegation(delegation(3, 4, at(9, 0, 0)), at(8, 0, 0))
        .await
        .unwrap();
    assert!(!store.end_delegation(uid(3), at(10, 0, 0)).await.unwrap());
}

async fn case_a_delegation_is_refused_for_unknown_inactive_or_cyclic_users<S: ContractStore>(
    store: Arc<S>,
) {
    helpers(&*store).await;
    let now = at(8, 0, 0);
    let until = at(12, 0, 0);
    assert_eq!(
        store.put_delegation(delegation(99, 4, until), now).await,
        Err(WorkflowError::not_found("user 99"))
    );
    assert_eq!(
        store.put_delegation(delegation(1, 99, until), now).await,
        Err(WorkflowError::UnknownUser {
            user: uid(99),
            field: "to_user_id"
        })
    );
    store
        .put_user(approvals::domain::model::User {
            active: false,
            ..user(5, "Second helper", &[])
        })
        .await
        .unwrap();
    assert_eq!(
        store.put_delegation(delegation(1, 5, until), now).await,
        Err(WorkflowError::inactive_delegate(uid(5)))
    );

    store
        .put_delegation(delegation(1, 4, until), now)
        .await
        .unwrap();
    assert_eq!(
        store.put_delegation(delegation(4, 1, until), now).await,
        Err(WorkflowError::DelegationCycle {
            user: uid(4),
            to_user: uid(1)
        })
    );
    // Nothing was stored by the refusals.
    assert_eq!(store.delegation(uid(4), now).await.unwrap(), None);
    // A chain is no cycle; and once 1's delegation has ended, 4 may delegate to 1.
    store
        .put_delegation(delegation(4, 2, until), now)
        .await
        .unwrap();
    // A longer cycle is refused as well: 1 -> 4 -> 2 runs, so 2 -> 1 would close it.
    assert_eq!(
        store.put_delegation(delegation(2, 1, until), now).await,
        Err(WorkflowError::DelegationCycle {
            user: uid(2),
            to_user: uid(1)
        })
    );
    store
        .put_delegation(delegation(4, 1, at(13, 0, 0)), until)
        .await
        .unwrap();
}

async fn case_a_delegate_decides_for_the_delegator_only_while_it_runs<S: ContractStore>(
    store: Arc<S>,
) {
    helpers(&*store).await;
    // Step 1 is user 1's (sales_manager), step 2 user 2's.
    let instance = start(&*store, CANCELLATION, "booking", 1, 3, at(8, 0, 0))
        .await
        .unwrap();
    let sales = instance.steps[0].id;
    assert_eq!(instance.steps[0].eligible_user_ids, vec![uid(1)]);
    store
        .put_delegation(delegation(1, 4, at(9, 0, 0)), at(8, 0, 0))
        .await
        .unwrap();
    // 4 to 5: 5 may act for 4, never for 1 (not transitive).
    store
        .put_delegation(delegation(4, 5, at(9, 0, 0)), at(8, 0, 0))
        .await
        .unwrap();
    let not_an_approver = |user| {
        Err(WorkflowError::NotAnApprover {
            user: uid(user),
            step: sales.get(),
        })
    };
    assert_eq!(
        approve_as(&*store, sales, 5, at(8, 30, 0)).await,
        not_an_approver(5)
    );
    // After the window: refused, and nothing written.
    assert_eq!(
        approve_as(&*store, sales, 4, at(9, 0, 0)).await,
        not_an_approver(4)
    );
    assert_eq!(store.instance(instance.id).await.unwrap(), instance);

    // During it: the delegate's decision, for user 1.
    let decided = approve_as(&*store, sales, 4, at(8, 30, 0)).await.unwrap();
    assert_eq!(decided.steps[0].status, StepStatus::Approved);
    assert_eq!(decided.steps[0].acted_by_user_id, Some(uid(4)));
    let approved = decided
        .audit
        .iter()
        .find(|a| a.action == AuditAction::StepApproved)
        .unwrap();
    assert_eq!(approved.actor_user_id, Some(uid(4)));
    assert_eq!(approved.on_behalf_of, Some(uid(1)));
    let stored = store.instance(instance.id).await.unwrap();
    assert_eq!(stored, decided, "stored as answered, on_behalf_of included");
    assert!(
        stored
            .audit
            .iter()
            .filter(|a| a.action != AuditAction::StepApproved)
            .all(|a| a.on_behalf_of.is_none())
    );
    assert_eq!(
        audit_chain::verify(&stored),
        AuditVerification::Valid {
            entries: stored.audit.len()
        }
    );
}

async fn case_a_delegates_inbox_lists_the_delegators_steps_once_and_pages<S: ContractStore>(
    store: Arc<S>,
) {
    helpers(&*store).await;
    // Three instances: steps awaiting user 1 at 8:01, 8:02 and 8:03.
    let mut steps = Vec::new();
    for (n, minute) in [(1, 1), (2, 2), (3, 3)] {
        let instance = start(&*store, CANCELLATION, "booking", n, 3, at(8, minute, 0))
            .await
            .unwrap();
        steps.push(instance.steps[0].id);
    }
    // User 4 is its own approver of nothing; as 1's delegate it sees 1's three steps.
    let page = store
        .delegated_pending_steps(uid(4), vec![uid(1)], 2, None)
        .await
        .unwrap();
    let seen: Vec<_> = page.iter().map(|p| (p.step_id, p.on_behalf_of)).collect();
    assert_eq!(
        seen,
        vec![(steps[0], Some(uid(1))), (steps[1], Some(uid(1)))]
    );
    let cursor = approvals::domain::model::InboxCursor::after(&page[1]);
    let rest = store
        .delegated_pending_steps(uid(4), vec![uid(1)], 2, cursor)
        .await
        .unwrap();
    assert_eq!(
        rest.iter().map(|p| p.step_id).collect::<Vec<_>>(),
        vec![steps[2]]
    );
    // The delegator's own inbox is unchanged, and marks nothing.
    let own = store
        .delegated_pending_steps(uid(1), Vec::new(), 10, None)
        .await
        .unwrap();
    assert_eq!(own, store.pending_steps(uid(1), 10, None).await.unwrap());
    assert!(own.iter().all(|p| p.on_behalf_of.is_none()));
    assert_eq!(own.len(), 3);

    // User 1 made a sales manager's delegate of... itself eligible: a step listed for both
    // user 1 and its delegator 4 is user 1's own, listed once.
    store.set_user_roles(uid(4), &[role("sales_manager")]).await;
    let both = start(&*store, CANCELLATION, "booking", 4, 3, at(8, 4, 0))
        .await
        .unwrap();
    assert_eq!(both.steps[0].eligible_user_ids, vec![uid(1), uid(4)]);
    let merged = store
        .delegated_pending_steps(uid(1), vec![uid(4)], 10, None)
        .await
        .unwrap();
    let seen: Vec<_> = merged.iter().map(|p| (p.step_id, p.on_behalf_of)).collect();
    assert_eq!(
        seen,
        vec![
            (steps[0], None),
            (steps[1], None),
            (steps[2], None),
            (both.steps[0].id, None)
        ]
    );
}

async fn case_a_delegates_quorum_approval_is_stored_as_the_delegators<S: ContractStore>(
    store: Arc<S>,
) {
    helpers(&*store).await;
    for id in [21, 22] {
        store.add_user(uid(id), &format!("Board member {id}")).await;
        store.set_user_roles(uid(id), &[role("board")]).await;
    }
    let mut first = step(1, "Board", by_role("board"));
    first.quorum = Quorum::All;
    store
        .put_template(template(
            9,
            "Board review",
            "booking.board_review_requested",
            "booking",
            true,
            vec![first, step(2, "Finance", by_user(2))],
        ))
        .await;
    let created = start(
        &*store,
        "booking.board_review_requested",
        "booking",
        3,
        3,
        at(8, 0, 0),
    )
    .await
    .unwrap();
    let board = created.steps[0].id;
    store
        .put_delegation(delegation(21, 4, at(12, 0, 0)), at(8, 0, 0))
        .await
        .unwrap();

    let partly = approve_as(&*store, board, 4, at(8, 1, 0)).await.unwrap();
    let approvals = &partly.steps[0].approvals;
    assert_eq!(approvals.len(), 1);
    assert_eq!(approvals[0].user_id, uid(21));
    assert_eq!(approvals[0].acted_by, Some(uid(4)));
    assert_eq!(store.instance(partly.id).await.unwrap(), partly);
    // The delegator's part is done: it leaves 21's inbox (and so the delegate's), stays in 22's.
    assert!(
        store
            .pending_steps(uid(21), 10, None)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        store
            .delegated_pending_steps(uid(4), vec![uid(21)], 10, None)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        store.pending_steps(uid(22), 10, None).await.unwrap().len(),
        1
    );
    // Neither the delegator nor the delegate for it may approve again.
    for by in [21, 4] {
        assert_eq!(
            approve_as(&*store, board, by, at(8, 2, 0)).await,
            Err(WorkflowError::AlreadyApproved {
                user: uid(21),
                step: board.get()
            }),
            "by {by}"
        );
    }
    let done = approve_as(&*store, board, 22, at(8, 3, 0)).await.unwrap();
    assert_eq!(done.steps[0].status, StepStatus::Approved);
    let stored = store.instance(done.id).await.unwrap();
    assert_eq!(stored, done);
    assert_eq!(
        audit_chain::verify(&stored),
        AuditVerification::Valid {
            entries: stored.audit.len()
        }
    );
}
