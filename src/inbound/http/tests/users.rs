//! Route tests: the user directory (`PUT`/`GET /users/{id}`, `GET /users?role=R`), and inactive
//! users refused with 403 `user_inactive`.

use serde_json::json;
use warp::http::StatusCode;
use warp::test::request;

use super::fixtures;
use super::*;
use crate::domain::model::{RoleName, User, UserId};

const USERS: &str = "/api/v1/workflow/users";

fn dana(roles: &[&str], active: bool) -> User {
    User {
        id: UserId::new(7).unwrap(),
        name: "Dana Finance".to_owned(),
        roles: roles.iter().map(|r| RoleName::new(*r).unwrap()).collect(),
        active,
    }
}

// ----- against the port -----

#[tokio::test]
async fn put_user_is_201_when_created_and_200_when_replaced() {
    let h = mock(|port| {
        let mut sequence = mockall::Sequence::new();
        port.expect_put_user()
            .times(1)
            .in_sequence(&mut sequence)
            // As sent: duplicates and order are the store's to fold; active by default.
            .with(mockall::predicate::eq(dana(
                &["finance_manager", "auditor", "auditor"],
                true,
            )))
            .returning(|_| answer(true));
        port.expect_put_user()
            .times(1)
            .in_sequence(&mut sequence)
            .with(mockall::predicate::eq(dana(&[], false)))
            .returning(|_| answer(false));
    });

    let created = h
        .put(
            &format!("{USERS}/7"),
            &json!({"name": "Dana Finance", "roles": ["finance_manager", "auditor", "auditor"]}),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    assert_json(&created);
    assert_eq!(
        created.text,
        r#"{"id":7,"name":"Dana Finance","roles":["auditor","finance_manager"],"active":true}"#
    );

    let replaced = h
        .put(
            &format!("{USERS}/7"),
            &json!({"name": "Dana Finance", "roles": [], "active": false}),
        )
        .await;
    assert_eq!(replaced.status, StatusCode::OK, "{}", replaced.body);
    assert_eq!(
        replaced.body,
        json!({"id": 7, "name": "Dana Finance", "roles": [], "active": false})
    );
}

#[tokio::test]
async fn put_user_with_a_bad_body_is_refused_at_the_edge() {
    let h = unreached();
    let cases = [
        (json!({"roles": []}), "name"),
        (json!({"name": 5, "roles": []}), "name"),
        (json!({"name": "Dana"}), "roles"),
        (json!({"name": "Dana", "roles": {"a": 1}}), "roles"),
        (json!({"name": "Dana", "roles": ["auditor", 3]}), "roles[1]"),
        (json!({"name": "Dana", "roles": ["Auditor"]}), "roles[0]"),
        (json!({"name": "Dana", "roles": [], "active": 1}), "active"),
        (
            json!({"name": "Dana", "roles": [], "email": "d@x"}),
            "email",
        ),
    ];
    for (body, field) in cases {
        let res = h.put(&format!("{USERS}/7"), &body).await;
        assert_eq!(
            res.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{body}: {}",
            res.body
        );
        assert_validation(&res, field);
    }

    let not_json = h
        .send(
            request()
                .method("PUT")
                .path(&format!("{USERS}/7"))
                .header("content-type", "application/json")
                .body("{\"name\":"),
        )
        .await;
    assert_error(&not_json, StatusCode::BAD_REQUEST, "invalid_json");

    let text = h
        .send(
            request()
                .method("PUT")
                .path(&format!("{USERS}/7"))
                .header("content-type", "text/plain")
                .body(r#"{"name":"Dana","roles":[]}"#),
        )
        .await;
    assert_error(
        &text,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
    );

    for id in ["0", "abc", "-3", "07"] {
        let res = h
            .put(
                &format!("{USERS}/{id}"),
                &json!({"name": "Dana", "roles": []}),
            )
            .await;
        assert_error(&res, StatusCode::NOT_FOUND, "not_found");
    }
}

#[tokio::test]
async fn a_blank_name_is_the_domains_422() {
    let h = mock(|port| {
        port.expect_put_user().times(1).returning(|_| {
            refuse(WorkflowError::validation(
                "name",
                "must be 1 to 200 characters, not blank",
            ))
        });
    });
    let res = h
        .put(&format!("{USERS}/7"), &json!({"name": " ", "roles": []}))
        .await;
    assert_validation(&res, "name");
}

#[tokio::test]
async fn get_user_renders_the_user_or_404() {
    let h = mock(|port| {
        port.expect_user()
            .with(mockall::predicate::eq(UserId::new(7).unwrap()))
            .times(1)
            .returning(|_| answer(dana(&["finance_manager"], false)));
        port.expect_delegation()
            .with(mockall::predicate::eq(UserId::new(7).unwrap()))
            .times(1)
            .returning(|_| answer(None));
        port.expect_user()
            .with(mockall::predicate::eq(UserId::new(8).unwrap()))
            .times(1)
            .returning(|_| refuse(WorkflowError::not_found("user 8")));
    });

    let res = h.get(&format!("{USERS}/7")).await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.body);
    assert_eq!(
        res.text,
        r#"{"id":7,"name":"Dana Finance","roles":["finance_manager"],"active":false}"#
    );

    let missing = h.get(&format!("{USERS}/8")).await;
    let message = assert_error(&missing, StatusCode::NOT_FOUND, "not_found");
    assert_eq!(message, "User 8 was not found.");
}

#[tokio::test]
async fn users_hand_the_port_the_role_and_render_the_list() {
    let h = mock(|port| {
        let mut sequence = mockall::Sequence::new();
        port.expect_users()
            .times(1)
            .in_sequence(&mut sequence)
            .with(mockall::predicate::eq(Some(
                RoleName::new("finance_manager").unwrap(),
            )))
            .returning(|_| answer(vec![dana(&["finance_manager"], true)]));
        port.expect_users()
            .times(1)
            .in_sequence(&mut sequence)
            .with(mockall::predicate::eq(None))
            .returning(|_| answer(Vec::new()));
    });

    let res = h.get(&format!("{USERS}?role=finance_manager")).await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.body);
    assert_eq!(
        res.body,
        json!({"items": [
            {"id": 7, "name": "Dana Finance", "roles": ["finance_manager"], "active": true}
        ]})
    );
    let all = h.get(USERS).await;
    assert_eq!(all.body, json!({"items": []}));
}

#[tokio::test]
async fn users_with_a_bad_query_are_422() {
    let h = unreached();
    for (query, field) in [
        ("?role=Finance", "role"),
        ("?role=", "role"),
        ("?role=a%20b", "role"),
        ("?page=2", "page"),
    ] {
        let res = h.get(&format!("{USERS}{query}")).await;
        assert_eq!(res.status, StatusCode::UNPROCESSABLE_ENTITY, "{query}");
        assert_validation(&res, field);
    }
    let res = h
        .send(request().method("DELETE").path(&format!("{USERS}/1")))
        .await;
    assert_error(&res, StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed");
    let res = h
        .send(json_request(
            "POST",
            USERS,
            &json!({"name": "x", "roles": []}),
        ))
        .await;
    assert_error(&res, StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed");
}

#[tokio::test]
async fn an_inactive_actor_is_403_user_inactive() {
    let h = mock(|port| {
        port.expect_decide().times(1).returning(|_, _| {
            refuse(WorkflowError::UserInactive {
                user: fixtures::user(1),
            })
        });
    });
    let res = h.approve(1, &json!({"acted_by_user_id": 1})).await;
    let message = assert_error(&res, StatusCode::FORBIDDEN, "user_inactive");
    assert_eq!(
        message,
        "User 1 is inactive; reactivate the user to let it act."
    );
}

// ----- end to end, on the in-memory store -----

#[tokio::test]
async fn a_deactivated_user_can_neither_decide_nor_trigger_until_reactivated() {
    let h = store().await;
    // Instance 1's step 1 awaits user 1 (sales manager); user 3 starts bookings.
    let off = h
        .put(
            &format!("{USERS}/1"),
            &json!({"name": "Sales Manager", "roles": ["sales_manager"], "active": false}),
        )
        .await;
    assert_eq!(off.status, StatusCode::OK, "{}", off.body);
    assert_eq!(off.body["active"], json!(false));

    let refused = h.approve(1, &json!({"acted_by_user_id": 1})).await;
    assert_error(&refused, StatusCode::FORBIDDEN, "user_inactive");
    // The snapshot is unchanged, and the step still awaits.
    let instance = h.get(&format!("{INSTANCES}/1")).await;
    assert_eq!(instance.body["steps"][0]["eligible_user_ids"], json!([1]));
    assert_eq!(
        step_statuses(&instance.body),
        ["awaiting_action", "pending"]
    );

    // A new booking's first step would have nobody: user 1 was the only sales manager.
    let nobody = h.trigger(&booking_trigger(2)).await;
    assert_error(
        &nobody,
        StatusCode::UNPROCESSABLE_ENTITY,
        "no_eligible_approver",
    );

    h.put(
        &format!("{USERS}/3"),
        &json!({"name": "Sales Coordinator", "roles": ["sales_coordinator"], "active": false}),
    )
    .await;
    let initiator = h.trigger(&booking_trigger(2)).await;
    assert_error(&initiator, StatusCode::FORBIDDEN, "user_inactive");

    let on = h
        .put(
            &format!("{USERS}/1"),
            &json!({"name": "Sales Manager", "roles": ["sales_manager"]}),
        )
        .await;
    assert_eq!(on.body["active"], json!(true));
    let approved = h.approve(1, &json!({"acted_by_user_id": 1})).await;
    assert_eq!(approved.status, StatusCode::OK, "{}", approved.body);

    let listed = h.get(&format!("{USERS}?role=sales_coordinator")).await;
    assert_eq!(
        listed.body,
        json!({"items": [
            {"id": 3, "name": "Sales Coordinator", "roles": ["sales_coordinator"], "active": false}
        ]})
    );
    let ids: Vec<i64> = array(&h.get(USERS).await.body["items"])
        .iter()
        .map(|u| u["id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids, [1, 2, 3]);
}
