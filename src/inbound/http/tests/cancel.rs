//! Route tests: cancelling an instance (`POST /instances/{id}/cancel`), against the port and end
//! to end on the in-memory store.

use serde_json::{Value, json};
use warp::http::StatusCode;
use warp::test::request;

use super::fixtures::{self, INSTANCE_JSON};
use super::*;
use crate::domain::model::{CancelRequest, Comment, InstanceId, InstanceStatus};

fn cancel_path(id: &str) -> String {
    format!("{INSTANCES}/{id}/cancel")
}

// ----- against the port -----

#[tokio::test]
async fn cancel_hands_the_port_the_request_and_answers_the_instance() {
    let expected = [
        CancelRequest {
            instance_id: InstanceId::new(2).unwrap(),
            acted_by: fixtures::user(3),
            reason: None,
        },
        CancelRequest {
            instance_id: InstanceId::new(2).unwrap(),
            acted_by: fixtures::user(3),
            reason: Some(Comment::new("Booking kept.").unwrap()),
        },
    ];
    let h = mock(move |port| {
        let mut sequence = mockall::Sequence::new();
        for request in expected {
            port.expect_cancel()
                .times(1)
                .in_sequence(&mut sequence)
                .withf(move |r, _| *r == request)
                .returning(|_, _| fresh(fixtures::instance()));
        }
    });
    for body in [
        json!({"acted_by_user_id": 3}),
        json!({"acted_by_user_id": 3, "reason": "Booking kept."}),
    ] {
        let res = h.post(&cancel_path("2"), &body).await;
        assert_eq!(res.status, StatusCode::OK, "{}", res.body);
        assert_json(&res);
        assert_eq!(res.text, INSTANCE_JSON);
    }
}

#[tokio::test]
async fn each_refusal_of_the_port_has_its_status_code_and_message() {
    let cases = [
        (
            WorkflowError::NotTheInitiator {
                user: fixtures::user(1),
                instance: 2,
            },
            StatusCode::FORBIDDEN,
            "not_the_initiator",
            "User 1 did not start instance 2; only its initiator may cancel it.",
        ),
        (
            WorkflowError::InstanceNotActive {
                instance: 2,
                status: InstanceStatus::Approved,
            },
            StatusCode::CONFLICT,
            "instance_not_active",
            "Instance 2 is approved; only a pending or in_progress instance can be cancelled.",
        ),
        (
            WorkflowError::not_found("instance 2"),
            StatusCode::NOT_FOUND,
            "not_found",
            "Instance 2 was not found.",
        ),
        (
            WorkflowError::UnknownUser {
                user: fixtures::user(99),
                field: "acted_by_user_id",
            },
            StatusCode::UNPROCESSABLE_ENTITY,
            "unknown_user",
            "Field 'acted_by_user_id': user 99 does not exist.",
        ),
    ];
    for (error, status, code, message) in cases {
        let h = mock(move |port| {
            port.expect_cancel()
                .times(1)
                .returning(move |_, _| refuse(error.clone()));
        });
        let res = h
            .post(&cancel_path("2"), &json!({"acted_by_user_id": 1}))
            .await;
        assert_eq!(assert_error(&res, status, code), message);
    }
}

#[tokio::test]
async fn cancel_with_an_invalid_body_is_422_naming_the_field() {
    let h = unreached();
    let cases = [
        (json!({}), "acted_by_user_id"),
        (json!({"acted_by_user_id": null}), "acted_by_user_id"),
        (json!({"acted_by_user_id": "3"}), "acted_by_user_id"),
        (json!({"acted_by_user_id": 0}), "acted_by_user_id"),
        (json!({"acted_by_user_id": 3, "reason": ""}), "reason"),
        (json!({"acted_by_user_id": 3, "reason": "  "}), "reason"),
        (json!({"acted_by_user_id": 3, "reason": 5}), "reason"),
        (
            json!({"acted_by_user_id": 3, "reason": "a\u{0}b"}),
            "reason",
        ),
        (
            json!({"acted_by_user_id": 3, "reason": "x".repeat(2001)}),
            "reason",
        ),
        (json!({"acted_by_user_id": 3, "comment": "x"}), "comment"),
    ];
    for (body, field) in cases {
        let res = h.post(&cancel_path("2"), &body).await;
        assert_validation(&res, field);
    }
}

#[tokio::test]
async fn cancel_outside_the_contract_never_reaches_the_port() {
    let h = unreached();
    for id in ["x", "0", "-1", "01", "9223372036854775808"] {
        let res = h
            .post(&cancel_path(id), &json!({"acted_by_user_id": 3}))
            .await;
        assert_error(&res, StatusCode::NOT_FOUND, "not_found");
    }
    let res = h.get(&cancel_path("2")).await;
    assert_error(&res, StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed");
    let res = h
        .send(
            request()
                .method("POST")
                .path(&cancel_path("2"))
                .body(r#"{"acted_by_user_id":3}"#),
        )
        .await;
    assert_error(
        &res,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
    );
    for body in [r#"{"acted_by_user_id":"#, "[3]"] {
        let res = h
            .send(
                request()
                    .method("POST")
                    .path(&cancel_path("2"))
                    .header("content-type", "application/json")
                    .body(body),
            )
            .await;
        assert_error(&res, StatusCode::BAD_REQUEST, "invalid_json");
    }
}

// ----- end to end, on the in-memory store -----

#[tokio::test]
async fn the_initiator_cancels_and_the_instance_ends() {
    let h = store().await;
    // The fixture instance 1 was started by user 3; step 1 awaits user 1.
    let res = h
        .post(
            &cancel_path("1"),
            &json!({"acted_by_user_id": 3, "reason": "Customer stays."}),
        )
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.body);
    assert_json(&res);
    let i = &res.body;
    assert_eq!(i["status"], json!("cancelled"));
    assert_eq!(step_statuses(i), ["cancelled", "cancelled"]);
    assert_eq!(i["steps"][0]["acted_by_user_id"], Value::Null);
    assert_time(&i["completed_at"], "completed_at");
    assert_eq!(i["updated_at"], i["completed_at"]);
    assert_eq!(audit_actions(i).last().copied(), Some("instance_cancelled"));
    let last = array(&i["audit"]).last().unwrap();
    assert_eq!(last["actor_user_id"], json!(3));
    assert_eq!(last["comment"], json!("Customer stays."));
    assert_eq!(last["step_id"], Value::Null);
    assert_instance_times(i);

    let inbox = h.get("/api/v1/workflow/steps/pending?user_id=1").await;
    assert_eq!(inbox.body, json!({"items": [], "next": null}));
    let fetched = h.get(&format!("{INSTANCES}/1")).await;
    assert_eq!(fetched.body, res.body);

    let again = assert_error(
        &h.post(&cancel_path("1"), &json!({"acted_by_user_id": 3}))
            .await,
        StatusCode::CONFLICT,
        "instance_not_active",
    );
    assert!(again.contains("cancelled"), "{again}");
    assert_error(
        &h.approve(1, &json!({"acted_by_user_id": 1})).await,
        StatusCode::CONFLICT,
        "step_not_actionable",
    );
    // The entity is free for a new instance.
    assert_eq!(
        h.trigger(&booking_trigger(1)).await.status,
        StatusCode::CREATED
    );
}

#[tokio::test]
async fn only_the_initiator_of_an_active_instance_may_cancel() {
    let h = store().await;
    let path = cancel_path("1");
    let message = assert_error(
        &h.post(&path, &json!({"acted_by_user_id": 1})).await,
        StatusCode::FORBIDDEN,
        "not_the_initiator",
    );
    assert!(message.contains("User 1"), "{message}");
    let message = assert_error(
        &h.post(&path, &json!({"acted_by_user_id": 99})).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "unknown_user",
    );
    assert!(message.contains("acted_by_user_id"), "{message}");
    assert_error(
        &h.post(&cancel_path("999"), &json!({"acted_by_user_id": 3}))
            .await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    // Refusals changed nothing.
    let still = h.get(&format!("{INSTANCES}/1")).await;
    assert_eq!(still.body["status"], json!("in_progress"));
    assert_eq!(step_statuses(&still.body), ["awaiting_action", "pending"]);

    // An ended instance: approved by both steps, then the initiator is too late.
    h.approve(1, &json!({"acted_by_user_id": 1})).await;
    let approved = h.approve(2, &json!({"acted_by_user_id": 2})).await;
    assert_eq!(
        approved.body["status"],
        json!("approved"),
        "{}",
        approved.body
    );
    let message = assert_error(
        &h.post(&path, &json!({"acted_by_user_id": 3})).await,
        StatusCode::CONFLICT,
        "instance_not_active",
    );
    assert!(message.contains("approved"), "{message}");
}
