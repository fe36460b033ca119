//! Contract: the user directory (`RoleResolver`): who the users are, who holds a role now, and
//! `put_user` creating or replacing a user without touching existing snapshots.

use std::sync::Arc;

use approvals::domain::model::UserId;

use super::{ContractStore, pending_line, start};
use crate::fixtures::{CANCELLATION, at, by_role, by_user, role, uid, user};

contract_tests! {
    case_role_resolution => memory_role_resolution, postgres_role_resolution;
    case_put_user_creates_then_replaces =>
        memory_put_user_creates_then_replaces, postgres_put_user_creates_then_replaces;
}

async fn case_role_resolution<S: ContractStore>(store: Arc<S>) {
    let sorted = |mut lists: Vec<Vec<UserId>>| {
        for list in &mut lists {
            list.sort();
        }
        lists
    };

    assert_eq!(
        store
            .eligible_users(&[
                by_role("sales_manager"),
                by_role("finance_manager"),
                by_role("sales_coordinator"),
                by_role("no_such_role"),
                by_user(2),
                by_user(999),
                by_role("sales_manager"),
            ])
            .await
            .unwrap(),
        vec![
            vec![uid(1)],
            vec![uid(2)],
            vec![uid(3)],
            vec![],
            vec![uid(2)],
            vec![],
            vec![uid(1)],
        ]
    );
    assert_eq!(
        store.eligible_users(&[]).await.unwrap(),
        Vec::<Vec<UserId>>::new()
    );

    assert!(store.user_exists(uid(1)).await.unwrap());
    assert!(store.user_exists(uid(3)).await.unwrap());
    assert!(!store.user_exists(uid(10)).await.unwrap());
    assert!(!store.user_exists(uid(999)).await.unwrap());

    store.add_user(uid(10), "Deputy").await;
    store.add_user(uid(11), "Controller").await;
    assert!(store.user_exists(uid(10)).await.unwrap());
    assert_eq!(
        store.eligible_users(&[by_user(10)]).await.unwrap(),
        vec![vec![uid(10)]]
    );
    store
        .set_user_roles(uid(10), &[role("finance_manager"), role("sales_manager")])
        .await;
    store
        .set_user_roles(uid(11), &[role("finance_manager")])
        .await;
    let now = store
        .eligible_users(&[by_role("finance_manager"), by_role("sales_manager")])
        .await
        .unwrap();
    assert_eq!(
        sorted(now),
        vec![vec![uid(2), uid(10), uid(11)], vec![uid(1), uid(10)]]
    );

    // Replacing roles removes the old ones; a new role works at once.
    store
        .set_user_roles(uid(10), &[role("sales_coordinator"), role("auditor")])
        .await;
    let now = store
        .eligible_users(&[
            by_role("finance_manager"),
            by_role("sales_manager"),
            by_role("sales_coordinator"),
            by_role("auditor"),
        ])
        .await
        .unwrap();
    assert_eq!(
        sorted(now),
        vec![
            vec![uid(2), uid(11)],
            vec![uid(1)],
            vec![uid(3), uid(10)],
            vec![uid(10)],
        ]
    );
    store.set_user_roles(uid(11), &[]).await;
    assert_eq!(
        store
            .eligible_users(&[by_role("finance_manager")])
            .await
            .unwrap(),
        vec![vec![uid(2)]]
    );
    assert!(
        store.user_exists(uid(11)).await.unwrap(),
        "a user without roles still exists"
    );
}

/// `put_user` creates a user (roles created as needed), then replaces its roles wholesale; who
/// may act on an existing instance stays what its snapshot says.
async fn case_put_user_creates_then_replaces<S: ContractStore>(store: Arc<S>) {
    const ROLES: &[&str] = &["regional_director", "sales_manager", "finance_manager"];

    assert!(!store.user_exists(uid(20)).await.unwrap());
    let created = store
        .put_user(user(
            20,
            "Regional Director",
            &["regional_director", "sales_manager"],
        ))
        .await
        .unwrap();
    assert!(created, "a new user is created");
    assert!(store.user_exists(uid(20)).await.unwrap());
    assert_eq!(
        members(&*store, ROLES).await,
        vec![vec![uid(20)], vec![uid(1), uid(20)], vec![uid(2)]]
    );
    assert_eq!(
        store.eligible_users(&[by_user(20)]).await.unwrap(),
        vec![vec![uid(20)]]
    );

    let instance = start(&*store, CANCELLATION, "booking", 1, 3, at(8, 0, 0))
        .await
        .unwrap();
    assert_eq!(instance.steps[0].eligible_user_ids, vec![uid(1), uid(20)]);

    // A second put replaces: the old roles go, the new ones apply at once.
    let created = store
        .put_user(user(20, "Acting Finance Manager", &["finance_manager"]))
        .await
        .unwrap();
    assert!(!created, "an existing user is replaced, not created");
    assert_eq!(
        members(&*store, ROLES).await,
        vec![vec![], vec![uid(1)], vec![uid(2), uid(20)]]
    );
    // The instance keeps its snapshot, and so does the inbox.
    assert_eq!(store.instance(instance.id).await.unwrap(), instance);
    assert_eq!(
        store.pending_steps(uid(20), 50, None).await.unwrap(),
        vec![pending_line(&instance, 1)]
    );

    // No roles at all: the user still exists. Demo users are replaced the same way.
    assert!(!store.put_user(user(20, "Retired", &[])).await.unwrap());
    assert!(store.user_exists(uid(20)).await.unwrap());
    assert!(!store.put_user(user(1, "Sales Manager", &[])).await.unwrap());
    assert_eq!(
        members(&*store, ROLES).await,
        vec![vec![], vec![], vec![uid(2)]]
    );
    assert_eq!(store.instance(instance.id).await.unwrap(), instance);
}

/// Who holds each of `roles` now, each list sorted.
async fn members<S: ContractStore>(store: &S, roles: &[&str]) -> Vec<Vec<UserId>> {
    let approvers: Vec<_> = roles.iter().map(|r| by_role(r)).collect();
    let mut lists = store.eligible_users(&approvers).await.unwrap();
    for list in &mut lists {
        list.sort();
    }
    lists
}
