//! Route tests: deciding a step (`POST /steps/{id}/approve` and `/reject`).

use serde_json::{Value, json};
use warp::http::StatusCode;

use super::fixtures::{self, INSTANCE_JSON, user_with_roles};
use super::*;
use crate::domain::model::{Comment, DecisionRequest, StepId, Verdict};

// ----- against the port -----

#[tokio::test]
async fn approve_and_reject_hand_the_port_the_decision_and_answer_the_instance() {
    let decision = |step: i64, actor: i64, verdict: Verdict| DecisionRequest {
        step_id: StepId::new(step).unwrap(),
        acted_by: fixtures::user(actor),
        verdict,
    };
    let expected = [
        decision(3, 1, Verdict::Approve { comment: None }),
        decision(
            3,
            1,
            Verdict::Approve {
                comment: Some(Comment::new("Fine.").unwrap()),
            },
        ),
        decision(
            4,
            2,
            Verdict::Reject {
                comment: Comment::new("Too much.").unwrap(),
            },
        ),
    ];
    let h = mock(move |port| {
        let mut sequence = mockall::Sequence::new();
        for request in expected {
            port.expect_decide()
                .times(1)
                .in_sequence(&mut sequence)
                .withf(move |r, _| *r == request)
                .returning(|_, _| fresh(fixtures::instance()));
        }
    });
    let answers = [
        h.approve(3, &json!({"acted_by_user_id": 1})).await,
        h.approve(3, &json!({"acted_by_user_id": 1, "comment": "Fine."}))
            .await,
        h.reject(4, &json!({"acted_by_user_id": 2, "comment": "Too much."}))
            .await,
    ];
    for res in answers {
        assert_eq!(res.status, StatusCode::OK, "{}", res.body);
        assert_json(&res);
        assert_eq!(res.text, INSTANCE_JSON);
    }
}

#[tokio::test]
async fn reject_requires_a_comment() {
    let h = unreached();
    for body in [
        json!({"acted_by_user_id": 1}),
        json!({"acted_by_user_id": 1, "comment": ""}),
        json!({"acted_by_user_id": 1, "comment": "   "}),
        json!({"acted_by_user_id": 1, "comment": null}),
        json!({"acted_by_user_id": 1, "comment": 5}),
    ] {
        let res = h.reject(1, &body).await;
        assert_eq!(
            res.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{body}: {}",
            res.body
        );
        assert_validation(&res, "comment");
    }
}

#[tokio::test]
async fn decision_with_invalid_body_is_422_naming_the_field() {
    let h = unreached();
    let cases = [
        (json!({}), "acted_by_user_id"),
        (json!({"acted_by_user_id": "1"}), "acted_by_user_id"),
        (json!({"acted_by_user_id": 0}), "acted_by_user_id"),
        (json!({"acted_by_user_id": -1}), "acted_by_user_id"),
        (json!({"acted_by_user_id": 1.5}), "acted_by_user_id"),
        (json!({"acted_by_user_id": 1, "reason": "x"}), "reason"),
        (json!({"acted_by_user_id": 1, "comment": "  "}), "comment"),
    ];
    for (body, field) in cases {
        for res in [h.approve(1, &body).await, h.reject(1, &body).await] {
            assert_eq!(
                res.status,
                StatusCode::UNPROCESSABLE_ENTITY,
                "{body}: {}",
                res.body
            );
            assert_validation(&res, field);
        }
    }
}

#[tokio::test]
async fn decision_on_malformed_step_is_404_without_asking_the_port() {
    let h = unreached();
    for step in ["x", "0", "-1", "01", "9223372036854775808"] {
        for (verb, body) in [
            ("approve", json!({"acted_by_user_id": 1})),
            ("reject", json!({"acted_by_user_id": 1, "comment": "No."})),
        ] {
            let res = h
                .post(&format!("/api/v1/workflow/steps/{step}/{verb}"), &body)
                .await;
            assert_eq!(
                res.status,
                StatusCode::NOT_FOUND,
                "{verb} {step}: {}",
                res.body
            );
            assert_error(&res, StatusCode::NOT_FOUND, "not_found");
        }
    }
}

// ----- end to end, on the in-memory store -----

#[tokio::test]
async fn decisions_walk_an_instance_to_rejection() {
    let h = store().await;
    let created = h.trigger(&booking_trigger(2)).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    assert_eq!(created.body["id"], json!(2));
    let (first, second) = (3, 4);

    // User 2 is a finance manager, not a sales manager.
    assert_error(
        &h.approve(first, &json!({"acted_by_user_id": 2})).await,
        StatusCode::FORBIDDEN,
        "not_an_approver",
    );

    let approved = h.approve(first, &json!({"acted_by_user_id": 1})).await;
    assert_eq!(approved.status, StatusCode::OK, "{}", approved.body);
    assert_json(&approved);
    let i = &approved.body;
    assert_eq!(i["id"], json!(2));
    assert_eq!(i["status"], json!("in_progress"));
    assert_eq!(step_statuses(i), ["approved", "awaiting_action"]);
    assert_eq!(i["steps"][0]["acted_by_user_id"], json!(1));
    assert_eq!(i["steps"][0]["comment"], Value::Null);
    assert_time(&i["steps"][0]["acted_at"], "steps[0].acted_at");
    assert_time(&i["steps"][1]["activated_at"], "steps[1].activated_at");
    assert_eq!(i["completed_at"], Value::Null);
    assert_instance_times(i);

    let inbox = h.get("/api/v1/workflow/steps/pending?user_id=2").await;
    assert_eq!(array(&inbox.body["items"]).len(), 1);
    assert_eq!(inbox.body["items"][0]["step_id"], json!(second));

    let rejected = h
        .reject(
            second,
            &json!({"acted_by_user_id": 2, "comment": "Refund exceeds policy."}),
        )
        .await;
    assert_eq!(rejected.status, StatusCode::OK, "{}", rejected.body);
    let i = &rejected.body;
    assert_eq!(i["status"], json!("rejected"));
    assert_time(&i["completed_at"], "completed_at");
    assert_eq!(step_statuses(i), ["approved", "rejected"]);
    assert_eq!(i["steps"][1]["acted_by_user_id"], json!(2));
    assert_eq!(i["steps"][1]["comment"], json!("Refund exceeds policy."));
    assert_eq!(
        audit_actions(i),
        [
            "instance_created",
            "step_activated",
            "step_approved",
            "step_activated",
            "step_rejected",
            "instance_rejected"
        ]
    );
    let audit = array(&i["audit"]);
    assert_eq!(audit[4]["step_id"], json!(second));
    assert_eq!(audit[4]["actor_user_id"], json!(2));
    assert_eq!(audit[4]["comment"], json!("Refund exceeds policy."));
    assert_instance_times(i);

    // Decided steps can't be decided again; the message names the current status.
    let again = assert_error(
        &h.approve(second, &json!({"acted_by_user_id": 2})).await,
        StatusCode::CONFLICT,
        "step_not_actionable",
    );
    assert!(again.contains("rejected"), "{again}");
    let again = assert_error(
        &h.approve(first, &json!({"acted_by_user_id": 1})).await,
        StatusCode::CONFLICT,
        "step_not_actionable",
    );
    assert!(again.contains("approved"), "{again}");

    // The stored instance matches, and the entity can be triggered again.
    let fetched = h.get(&format!("{INSTANCES}/2")).await;
    assert_eq!(fetched.body, rejected.body);
    assert_eq!(
        h.trigger(&booking_trigger(2)).await.status,
        StatusCode::CREATED
    );
}

#[tokio::test]
async fn approving_every_step_approves_the_instance() {
    let h = store().await;
    let first = h
        .approve(
            1,
            &json!({"acted_by_user_id": 1, "comment": "Fine by sales."}),
        )
        .await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.body);
    assert_eq!(first.body["steps"][0]["comment"], json!("Fine by sales."));
    let last = h.approve(2, &json!({"acted_by_user_id": 2})).await;
    assert_eq!(last.status, StatusCode::OK, "{}", last.body);
    let i = &last.body;
    assert_eq!(i["status"], json!("approved"));
    assert_time(&i["completed_at"], "completed_at");
    assert_eq!(step_statuses(i), ["approved", "approved"]);
    assert_eq!(
        audit_actions(i),
        [
            "instance_created",
            "step_activated",
            "step_approved",
            "step_activated",
            "step_approved",
            "instance_approved"
        ]
    );
    assert_instance_times(i);
    let inbox = h.get("/api/v1/workflow/steps/pending?user_id=2").await;
    assert_eq!(inbox.body, json!({"items": [], "next": null}));
}

#[tokio::test]
async fn rejecting_the_first_step_cancels_the_rest() {
    let h = store().await;
    let res = h
        .reject(
            1,
            &json!({"acted_by_user_id": 1, "comment": "Customer withdrew."}),
        )
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.body);
    let i = &res.body;
    assert_eq!(i["status"], json!("rejected"));
    assert_eq!(step_statuses(i), ["rejected", "cancelled"]);
    assert_time(&i["completed_at"], "completed_at");
    assert_eq!(audit_actions(i).last().copied(), Some("instance_rejected"));
    assert_error(
        &h.approve(2, &json!({"acted_by_user_id": 2})).await,
        StatusCode::CONFLICT,
        "step_not_actionable",
    );
}

#[tokio::test]
async fn eligibility_is_the_snapshot_taken_at_trigger_time() {
    let h = store().await;
    // User 1 loses the sales_manager role after the fixture instance was created.
    h.service
        .put_user(user_with_roles(1, &[]))
        .await
        .expect("user 1 loses its roles");
    let res = h.approve(1, &json!({"acted_by_user_id": 1})).await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.body);
    assert_eq!(step_statuses(&res.body), ["approved", "awaiting_action"]);
}

#[tokio::test]
async fn refused_decisions_change_nothing() {
    let h = store().await;
    for res in [
        h.reject(1, &json!({"acted_by_user_id": 1})).await,
        h.approve(1, &json!({"acted_by_user_id": 1, "comment": "  "}))
            .await,
    ] {
        assert_validation(&res, "comment");
    }
    let still = h.get(&format!("{INSTANCES}/1")).await;
    assert_eq!(step_statuses(&still.body), ["awaiting_action", "pending"]);
}

#[tokio::test]
async fn decision_by_unknown_user_is_422_unknown_user() {
    let h = store().await;
    let approve = assert_error(
        &h.approve(1, &json!({"acted_by_user_id": 99})).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "unknown_user",
    );
    assert!(approve.contains("acted_by_user_id"), "{approve}");
    let reject = assert_error(
        &h.reject(1, &json!({"acted_by_user_id": 99, "comment": "No."}))
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "unknown_user",
    );
    assert!(reject.contains("acted_by_user_id"), "{reject}");
}

#[tokio::test]
async fn deciding_a_step_not_reached_yet_is_409() {
    let h = store().await;
    // Step 2 of the fixture instance waits for step 1; user 2 is its approver.
    let message = assert_error(
        &h.approve(2, &json!({"acted_by_user_id": 2})).await,
        StatusCode::CONFLICT,
        "step_not_actionable",
    );
    assert!(message.contains("pending"), "{message}");
    assert_error(
        &h.reject(2, &json!({"acted_by_user_id": 2, "comment": "Too early."}))
            .await,
        StatusCode::CONFLICT,
        "step_not_actionable",
    );
}
