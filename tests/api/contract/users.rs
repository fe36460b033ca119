//! Contract: the user directory read back (`user`, `users`, `user_active`) and inactive users
//! (`RoleResolver`, with the decision's unit of work): a user is stored with its active flag
//! and read back with its roles sorted; inactive users are left out of new snapshots; and an
//! inactive actor is refused inside the unit of work even though the step's snapshot holds it,
//! leaving nothing written.

use approvals::domain::model::Done;
use std::sync::Arc;

use approvals::domain::WorkflowError;
use approvals::domain::machine;
use approvals::domain::model::{
    DecisionRequest, Instance, StepId, TriggerRequest, User, UserId, Verdict,
};
use approvals::domain::ports::ActFn;
use chrono::{DateTime, Utc};

use super::{ContractStore, assert_no_callbacks, pending_line, start, step_ids};
use crate::fixtures::{CANCELLATION, PRICE_UPDATE, at, by_role, by_user, request, role, uid, user};

contract_tests! {
    case_users_are_stored_and_read_back =>
        memory_users_are_stored_and_read_back, postgres_users_are_stored_and_read_back;
    case_inactive_users_are_left_out_of_new_snapshots =>
        memory_inactive_users_are_left_out_of_new_snapshots,
        postgres_inactive_users_are_left_out_of_new_snapshots;
    case_an_inactive_actor_in_the_snapshot_is_refused =>
        memory_an_inactive_actor_in_the_snapshot_is_refused,
        postgres_an_inactive_actor_in_the_snapshot_is_refused;
}

fn inactive(id: i64, name: &str, roles: &[&str]) -> User {
    User {
        active: false,
        ..user(id, name, roles)
    }
}

async fn case_users_are_stored_and_read_back<S: ContractStore>(store: Arc<S>) {
    // Listed twice and out of order: held once, read back sorted.
    let created = store
        .put_user(inactive(
            20,
            "Regional Director",
            &["sales_manager", "auditor", "sales_manager"],
        ))
        .await
        .unwrap();
    assert!(created);
    let expected = inactive(20, "Regional Director", &["auditor", "sales_manager"]);
    assert_eq!(store.user(uid(20)).await.unwrap(), Some(expected.clone()));
    assert_eq!(store.user_active(uid(20)).await.unwrap(), Some(false));
    assert_eq!(store.user_active(uid(1)).await.unwrap(), Some(true));
    assert_eq!(store.user_active(uid(999)).await.unwrap(), None);
    assert_eq!(store.user(uid(999)).await.unwrap(), None);
    assert_eq!(
        store.user(uid(2)).await.unwrap(),
        Some(user(2, "Finance Manager", &["finance_manager"]))
    );

    // Everyone by id; a role's holders (active or not), each with all its roles.
    let everyone = store.users(None).await.unwrap();
    assert_eq!(
        everyone,
        vec![
            user(1, "Sales Manager", &["sales_manager"]),
            user(2, "Finance Manager", &["finance_manager"]),
            user(3, "Sales Coordinator", &["sales_coordinator"]),
            expected.clone(),
        ]
    );
    assert_eq!(
        store.users(Some(role("sales_manager"))).await.unwrap(),
        vec![
            user(1, "Sales Manager", &["sales_manager"]),
            expected.clone()
        ]
    );
    assert_eq!(
        store.users(Some(role("auditor"))).await.unwrap(),
        vec![expected]
    );
    assert_eq!(
        store.users(Some(role("no_such_role"))).await.unwrap(),
        Vec::<User>::new()
    );

    // Replacing: name, roles and flag all change; a user without roles is still listed.
    let created = store.put_user(user(20, "Director", &[])).await.unwrap();
    assert!(!created);
    assert_eq!(
        store.user(uid(20)).await.unwrap(),
        Some(user(20, "Director", &[]))
    );
    assert_eq!(store.user_active(uid(20)).await.unwrap(), Some(true));
    assert_eq!(
        store.users(Some(role("auditor"))).await.unwrap(),
        Vec::<User>::new()
    );
    let ids: Vec<UserId> = store
        .users(None)
        .await
        .unwrap()
        .iter()
        .map(|u| u.id)
        .collect();
    assert_eq!(ids, vec![uid(1), uid(2), uid(3), uid(20)]);
}

async fn case_inactive_users_are_left_out_of_new_snapshots<S: ContractStore>(store: Arc<S>) {
    store
        .put_user(user(20, "Deputy Sales Manager", &["sales_manager"]))
        .await
        .unwrap();
    let before = start(&*store, CANCELLATION, "booking", 1, 3, at(8, 0, 0))
        .await
        .unwrap();
    assert_eq!(before.steps[0].eligible_user_ids, vec![uid(1), uid(20)]);

    // User 1 goes inactive, keeping its role; user 2 (named by the price update's step 2) too.
    store
        .put_user(inactive(1, "Sales Manager", &["sales_manager"]))
        .await
        .unwrap();
    store
        .put_user(inactive(2, "Finance Manager", &["finance_manager"]))
        .await
        .unwrap();
    assert_eq!(
        store
            .eligible_users(&[
                by_role("sales_manager"),
                by_role("finance_manager"),
                by_user(2),
                by_user(3),
            ])
            .await
            .unwrap(),
        vec![vec![uid(20)], vec![], vec![], vec![uid(3)]]
    );
    assert!(store.user_exists(uid(1)).await.unwrap(), "still a user");

    // The earlier instance keeps its snapshot, and so does the inbox.
    assert_eq!(store.instance(before.id).await.unwrap(), before);
    assert_eq!(
        store.pending_steps(uid(1), 50, None).await.unwrap(),
        vec![pending_line(&before, 1)]
    );

    // A new trigger snapshots the active members only; a step left with nobody refuses.
    let refused = refusal(&*store, request(CANCELLATION, "booking", 2, 3, None)).await;
    assert_eq!(
        refused,
        WorkflowError::NoEligibleApprover {
            approver: "role 'finance_manager'".to_owned(),
            step_order: 2,
        }
    );
    let refused = refusal(&*store, request(PRICE_UPDATE, "unit", 2, 3, None)).await;
    assert_eq!(
        refused,
        WorkflowError::NoEligibleApprover {
            approver: "user 2".to_owned(),
            step_order: 2,
        }
    );

    // Reactivated, user 2 is snapshotted again.
    store
        .put_user(user(2, "Finance Manager", &["finance_manager"]))
        .await
        .unwrap();
    let after = start(&*store, CANCELLATION, "booking", 2, 3, at(8, 5, 0))
        .await
        .unwrap();
    assert_eq!(after.steps[0].eligible_user_ids, vec![uid(20)]);
    assert_eq!(after.steps[1].eligible_user_ids, vec![uid(2)]);
}

/// What the machine refuses for `request` on the directory as it is now.
async fn refusal<S: ContractStore>(store: &S, request: TriggerRequest) -> WorkflowError {
    let template = store
        .active_template(&request.event)
        .await
        .unwrap()
        .expect("an active template for the event");
    let approvers: Vec<_> = template.steps.iter().map(|s| s.approver.clone()).collect();
    let snapshots = store.eligible_users(&approvers).await.unwrap();
    machine::trigger(&template, request, snapshots, at(8, 1, 0)).unwrap_err()
}

/// The decision as the service hands it over: the machine under the row locks, given the
/// actor's directory entry as the store read it in the same unit of work.
async fn decide_as<S: ContractStore>(
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

async fn case_an_inactive_actor_in_the_snapshot_is_refused<S: ContractStore>(store: Arc<S>) {
    let instance = start(&*store, CANCELLATION, "booking", 1, 3, at(8, 0, 0))
        .await
        .unwrap();
    let (s1, s2) = step_ids(&instance);
    assert_eq!(instance.steps[0].eligible_user_ids, vec![uid(1)]);

    store
        .put_user(inactive(1, "Sales Manager", &["sales_manager"]))
        .await
        .unwrap();
    assert_eq!(
        decide_as(&*store, s1, 1, at(8, 1, 0)).await,
        Err(WorkflowError::UserInactive { user: uid(1) })
    );
    // Nothing was written: no step change, no audit, no callback.
    assert_eq!(store.instance(instance.id).await.unwrap(), instance);
    assert_no_callbacks(&*store).await;
    // An unknown step is still 404 first; a step not reached yet, 403 before 409.
    assert_eq!(
        decide_as(&*store, StepId::new(999_999).unwrap(), 1, at(8, 1, 0)).await,
        Err(WorkflowError::not_found("step 999999"))
    );
    assert_eq!(
        decide_as(&*store, s2, 1, at(8, 1, 0)).await,
        Err(WorkflowError::UserInactive { user: uid(1) })
    );

    // Reactivated, the same user decides on the same snapshot.
    store
        .put_user(user(1, "Sales Manager", &["sales_manager"]))
        .await
        .unwrap();
    let decided = decide_as(&*store, s1, 1, at(8, 2, 0)).await.unwrap();
    assert_eq!(decided.steps[0].acted_by_user_id, Some(uid(1)));
    assert_eq!(decided.steps[1].eligible_user_ids, vec![uid(2)]);
}
