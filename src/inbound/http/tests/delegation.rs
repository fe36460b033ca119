//! Route tests of delegation (`PUT`/`DELETE /users/{id}/delegation`, the delegation on
//! `GET /users/{id}`, the inbox's `on_behalf_of`): what the adapter hands the port and renders,
//! refusals at the edge, and a delegated approval end to end on the in-memory store.

use chrono::{Duration, SecondsFormat, Utc};
use serde_json::json;
use warp::http::StatusCode;
use warp::test::request;

use super::fixtures::{at, pending_step, user};
use super::{
    answer, assert_error, assert_validation, json_request, mock, refuse, store, unreached,
};
use crate::domain::WorkflowError;
use crate::domain::model::{Comment, Delegation, InboxPage};

const DELEGATION: &str = "/api/v1/workflow/users/2/delegation";

fn delegation() -> Delegation {
    Delegation {
        user_id: user(2),
        to_user_id: user(4),
        until: at(60),
        reason: Some(Comment::new("Holiday").unwrap()),
        created_at: at(0),
    }
}

#[tokio::test]
async fn put_hands_the_port_the_delegation_and_renders_it() {
    let h = mock(|port| {
        port.expect_put_delegation()
            .withf(|u, to, until, reason| {
                *u == user(2)
                    && *to == user(4)
                    && *until == at(60)
                    && reason.as_ref().map(Comment::as_str) == Some("Holiday")
            })
            .times(1)
            .returning(|_, _, _, _| answer(delegation()));
    });
    let res = h
        .put(
            DELEGATION,
            &json!({"to_user_id": 4, "until": "2024-05-01T11:00:00.123456Z", "reason": "Holiday"}),
        )
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text);
    assert_eq!(
        res.text,
        r#"{"user_id":2,"to_user_id":4,"until":"2024-05-01T11:00:00.123456Z","reason":"Holiday","created_at":"2024-05-01T10:00:00.123456Z"}"#
    );
}

#[tokio::test]
async fn bad_delegation_bodies_never_reach_the_port() {
    let h = unreached();
    for (body, field) in [
        (json!({"until": "2030-01-01T00:00:00Z"}), "to_user_id"),
        (
            json!({"to_user_id": "4", "until": "2030-01-01T00:00:00Z"}),
            "to_user_id",
        ),
        (json!({"to_user_id": 4}), "until"),
        (json!({"to_user_id": 4, "until": "2030-01-01"}), "until"),
        (json!({"to_user_id": 4, "until": 1}), "until"),
        (
            json!({"to_user_id": 4, "until": "2030-01-01T00:00:00Z", "reason": ""}),
            "reason",
        ),
        (
            json!({"to_user_id": 4, "until": "2030-01-01T00:00:00Z", "note": "x"}),
            "note",
        ),
    ] {
        assert_validation(&h.put(DELEGATION, &body).await, field);
    }
    let malformed = h
        .send(
            request()
                .method("PUT")
                .path(DELEGATION)
                .header("content-type", "application/json")
                .body("{\"to_user_id\":"),
        )
        .await;
    assert_error(&malformed, StatusCode::BAD_REQUEST, "invalid_json");
    let bad_id = h
        .send(json_request(
            "PUT",
            "/api/v1/workflow/users/abc/delegation",
            &json!({"to_user_id": 4, "until": "2030-01-01T00:00:00Z"}),
        ))
        .await;
    assert_error(&bad_id, StatusCode::NOT_FOUND, "not_found");
}

#[tokio::test]
async fn the_ports_refusals_are_the_contracts_answers() {
    let h = mock(|port| {
        port.expect_put_delegation()
            .times(1)
            .returning(|_, _, _, _| {
                refuse(WorkflowError::DelegationCycle {
                    user: user(2),
                    to_user: user(4),
                })
            });
        port.expect_end_delegation()
            .times(1)
            .returning(|_| refuse(WorkflowError::not_found("a running delegation of user 2")));
    });
    let cycle = h
        .put(
            DELEGATION,
            &json!({"to_user_id": 4, "until": "2030-01-01T00:00:00Z"}),
        )
        .await;
    let message = assert_error(&cycle, StatusCode::CONFLICT, "delegation_cycle");
    assert!(
        message.contains("User 4 already delegates to user 2"),
        "{message}"
    );
    let none = h.send(request().method("DELETE").path(DELEGATION)).await;
    let message = assert_error(&none, StatusCode::NOT_FOUND, "not_found");
    assert_eq!(message, "A running delegation of user 2 was not found.");
}

#[tokio::test]
async fn delete_ends_the_delegation_with_204_and_no_body() {
    let h = mock(|port| {
        port.expect_end_delegation()
            .withf(|u| *u == user(2))
            .times(1)
            .returning(|_| answer(()));
    });
    let res = h.send(request().method("DELETE").path(DELEGATION)).await;
    assert_eq!(res.status, StatusCode::NO_CONTENT);
    assert!(res.text.is_empty());
}

#[tokio::test]
async fn an_inbox_line_names_the_delegator_only_for_a_delegated_step() {
    let h = mock(|port| {
        port.expect_pending_steps().times(1).returning(|_, _, _| {
            let own = pending_step();
            let mut delegated = pending_step();
            delegated.on_behalf_of = Some(user(2));
            answer(InboxPage {
                items: vec![own, delegated],
                next: None,
            })
        });
    });
    let res = h.get("/api/v1/workflow/steps/pending?user_id=4").await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text);
    let items = res.body["items"].as_array().unwrap();
    assert!(items[0].get("on_behalf_of").is_none(), "{}", res.text);
    assert_eq!(items[1]["on_behalf_of"], json!(2));
}

/// End to end on the in-memory store with the system clock: user 4 (a deputy, not the requester 3) stands in for user 1 (the
/// sales manager of instance 1's step 1) for a day.
#[tokio::test]
async fn a_delegate_approves_for_the_delegator_while_the_delegation_runs() {
    let h = store().await;
    let deputy = h
        .put(
            "/api/v1/workflow/users/4",
            &json!({"name": "Deputy", "roles": []}),
        )
        .await;
    assert_eq!(deputy.status, StatusCode::CREATED, "{}", deputy.text);
    let until = (Utc::now() + Duration::days(1)).to_rfc3339_opts(SecondsFormat::Secs, true);
    let put = h
        .put(
            "/api/v1/workflow/users/1/delegation",
            &json!({"to_user_id": 4, "until": until}),
        )
        .await;
    assert_eq!(put.status, StatusCode::OK, "{}", put.text);
    let read = h.get("/api/v1/workflow/users/1").await;
    assert_eq!(read.body["delegation"]["to_user_id"], json!(4));
    // Reversed, it would be a cycle.
    let cycle = h
        .put(
            "/api/v1/workflow/users/4/delegation",
            &json!({"to_user_id": 1, "until": until}),
        )
        .await;
    assert_error(&cycle, StatusCode::CONFLICT, "delegation_cycle");

    let inbox = h.get("/api/v1/workflow/steps/pending?user_id=4").await;
    assert_eq!(
        inbox.body["items"][0]["step_id"],
        json!(1),
        "{}",
        inbox.text
    );
    assert_eq!(inbox.body["items"][0]["on_behalf_of"], json!(1));

    let approved = h.approve(1, &json!({"acted_by_user_id": 4})).await;
    assert_eq!(approved.status, StatusCode::OK, "{}", approved.text);
    assert_eq!(approved.body["steps"][0]["acted_by_user_id"], json!(4));
    assert_eq!(
        approved.body["steps"][0]["approvals"][0]["user_id"],
        json!(1)
    );
    assert_eq!(
        approved.body["steps"][0]["approvals"][0]["acted_by_user_id"],
        json!(4)
    );
    let entry = approved.body["audit"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == "step_approved")
        .unwrap();
    assert_eq!(entry["actor_user_id"], json!(4));
    assert_eq!(entry["on_behalf_of"], json!(1));
    let verified = h.get("/api/v1/workflow/instances/1/audit/verify").await;
    assert_eq!(verified.body["valid"], json!(true));

    // Ended: gone from the user, and a second DELETE finds none.
    let ended = h
        .send(
            request()
                .method("DELETE")
                .path("/api/v1/workflow/users/1/delegation"),
        )
        .await;
    assert_eq!(ended.status, StatusCode::NO_CONTENT);
    assert!(
        h.get("/api/v1/workflow/users/1")
            .await
            .body
            .get("delegation")
            .is_none()
    );
    let again = h
        .send(
            request()
                .method("DELETE")
                .path("/api/v1/workflow/users/1/delegation"),
        )
        .await;
    assert_error(&again, StatusCode::NOT_FOUND, "not_found");
}

#[tokio::test]
async fn the_stores_refusals_reach_the_client() {
    let h = store().await;
    let until = (Utc::now() + Duration::days(1)).to_rfc3339_opts(SecondsFormat::Secs, true);
    let put = |id: i64, to: i64, until: &str| {
        (
            format!("/api/v1/workflow/users/{id}/delegation"),
            json!({"to_user_id": to, "until": until}),
        )
    };
    let (path, body) = put(1, 99, &until);
    let unknown = h.put(&path, &body).await;
    let message = assert_error(&unknown, StatusCode::UNPROCESSABLE_ENTITY, "unknown_user");
    assert!(message.contains("to_user_id"), "{message}");
    let (path, body) = put(99, 1, &until);
    assert_error(
        &h.put(&path, &body).await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    let (path, body) = put(1, 1, &until);
    assert_validation(&h.put(&path, &body).await, "to_user_id");
    let (path, body) = put(1, 2, "2020-01-01T00:00:00Z");
    assert_validation(&h.put(&path, &body).await, "until");
}
