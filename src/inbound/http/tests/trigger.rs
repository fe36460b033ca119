//! Route tests: starting a workflow (`POST /instances`) and reading an instance
//! (`GET /instances/{id}`).

use serde_json::{Value, json};
use warp::http::StatusCode;
use warp::test::request;

use super::fixtures::{self, INSTANCE_JSON, user_with_roles};
use super::*;
use crate::domain::model::{EntityId, EntityType, EventName, InstanceId, TriggerRequest};

// ----- against the port -----

#[tokio::test]
async fn trigger_hands_the_port_the_parsed_request_and_answers_201_with_the_instance() {
    let h = mock(|port| {
        port.expect_trigger()
            .times(1)
            .withf(|request, _| {
                *request
                    == TriggerRequest {
                        event: EventName::new("booking.cancellation_requested").unwrap(),
                        entity_type: EntityType::new("booking").unwrap(),
                        entity_id: EntityId::new(2).unwrap(),
                        initiated_by: fixtures::user(3),
                        context: Some(json!({"reason": "moving abroad", "refund_cents": 125_000})),
                    }
            })
            .returning(|_, _| fresh(fixtures::instance()));
    });
    let mut body = booking_trigger(2);
    body["context"] = json!({"reason": "moving abroad", "refund_cents": 125_000});

    let res = h.trigger(&body).await;

    assert_eq!(res.status, StatusCode::CREATED, "{}", res.body);
    assert_json(&res);
    assert_eq!(res.text, INSTANCE_JSON);
}

#[tokio::test]
async fn trigger_accepts_json_content_type_with_charset() {
    let h = mock(|port| {
        port.expect_trigger()
            .times(1)
            .withf(|request, _| request.entity_id.get() == 3 && request.context.is_none())
            .returning(|_, _| fresh(fixtures::instance()));
    });
    let res = h
        .send(
            request()
                .method("POST")
                .path(INSTANCES)
                .header("content-type", "application/json; charset=utf-8")
                .body(booking_trigger(3).to_string()),
        )
        .await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.body);
}

#[tokio::test]
async fn trigger_with_invalid_fields_is_422_naming_the_field() {
    // Refused at the edge: the port is never called.
    let h = unreached();
    let valid = booking_trigger(2);
    let with = |field: &str, value: Value| {
        let mut body = valid.clone();
        body[field] = value;
        body
    };
    let without = |field: &str| {
        let mut body = valid.clone();
        body.as_object_mut().unwrap().remove(field);
        body
    };
    let cases: Vec<(&str, Value, &str)> = vec![
        ("missing event", without("event"), "event"),
        ("missing entity_type", without("entity_type"), "entity_type"),
        ("missing entity_id", without("entity_id"), "entity_id"),
        (
            "missing initiated_by",
            without("initiated_by"),
            "initiated_by",
        ),
        (
            "null entity_id",
            with("entity_id", Value::Null),
            "entity_id",
        ),
        ("unknown field", with("priority", json!("high")), "priority"),
        (
            "entity_id as string",
            with("entity_id", json!("7")),
            "entity_id",
        ),
        ("entity_id zero", with("entity_id", json!(0)), "entity_id"),
        (
            "entity_id negative",
            with("entity_id", json!(-1)),
            "entity_id",
        ),
        (
            "entity_id fractional",
            with("entity_id", json!(1.5)),
            "entity_id",
        ),
        (
            "initiated_by as string",
            with("initiated_by", json!("3")),
            "initiated_by",
        ),
        (
            "initiated_by zero",
            with("initiated_by", json!(0)),
            "initiated_by",
        ),
        (
            "event not a name",
            with("event", json!("Booking Cancel!")),
            "event",
        ),
        ("event empty", with("event", json!("")), "event"),
        ("event not a string", with("event", json!(5)), "event"),
        (
            "entity_type not a name",
            with("entity_type", json!("Booking!")),
            "entity_type",
        ),
        (
            "context a string",
            with("context", json!("note")),
            "context",
        ),
        (
            "context an array",
            with("context", json!([1, 2])),
            "context",
        ),
        ("context a number", with("context", json!(5)), "context"),
        (
            "context with NUL",
            with("context", json!({"note": "a\u{0}b"})),
            "context",
        ),
    ];
    for (case, body, field) in cases {
        let res = h.trigger(&body).await;
        assert_eq!(
            res.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{case}: {}",
            res.body
        );
        assert_validation(&res, field);
    }
}

#[tokio::test]
async fn get_instance_renders_the_instance() {
    let h = mock(|port| {
        port.expect_instance()
            .times(1)
            .withf(|id| *id == InstanceId::new(2).unwrap())
            .returning(|_| answer(fixtures::instance()));
    });
    let res = h.get(&format!("{INSTANCES}/2")).await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.body);
    assert_json(&res);
    assert_eq!(res.text, INSTANCE_JSON);
}

#[tokio::test]
async fn get_instance_malformed_id_is_404_without_asking_the_port() {
    let h = unreached();
    for id in [
        "abc",
        "0",
        "-1",
        "1.5",
        "9223372036854775808",
        "99999999999999999999999",
        "+1",
        "01",
    ] {
        let res = h.get(&format!("{INSTANCES}/{id}")).await;
        assert_eq!(res.status, StatusCode::NOT_FOUND, "id {id}: {}", res.body);
        assert_error(&res, StatusCode::NOT_FOUND, "not_found");
    }
}

// ----- end to end, on the in-memory store -----

#[tokio::test]
async fn trigger_creates_instance_with_first_step_awaiting() {
    let h = store().await;
    let mut body = booking_trigger(2);
    body["context"] = json!({"reason": "moving abroad", "refund_cents": 125_000});

    let res = h.trigger(&body).await;

    assert_eq!(res.status, StatusCode::CREATED, "{}", res.body);
    assert_json(&res);
    let i = &res.body;
    assert_eq!(i["id"], json!(2));
    assert_eq!(i["template_id"], json!(1));
    assert_eq!(i["template_version"], json!(1));
    assert_eq!(i["event"], json!("booking.cancellation_requested"));
    assert_eq!(i["entity_type"], json!("booking"));
    assert_eq!(i["entity_id"], json!(2));
    assert_eq!(i["initiated_by"], json!(3));
    assert_eq!(i["status"], json!("in_progress"));
    assert_eq!(
        i["context"],
        json!({"reason": "moving abroad", "refund_cents": 125_000})
    );
    assert_eq!(i["completed_at"], Value::Null);
    let steps = array(&i["steps"]);
    assert_eq!(steps.len(), 2);
    assert_eq!(steps[0]["id"], json!(3));
    assert_eq!(steps[0]["step_order"], json!(1));
    assert_eq!(steps[0]["status"], json!("awaiting_action"));
    assert_eq!(
        steps[0]["approver"],
        json!({"type": "role", "role": "sales_manager"})
    );
    assert_eq!(steps[0]["eligible_user_ids"], json!([1]));
    assert_time(&steps[0]["activated_at"], "steps[0].activated_at");
    assert_eq!(steps[0]["acted_by_user_id"], Value::Null);
    assert_eq!(steps[1]["id"], json!(4));
    assert_eq!(steps[1]["step_order"], json!(2));
    assert_eq!(steps[1]["status"], json!("pending"));
    assert_eq!(
        steps[1]["approver"],
        json!({"type": "role", "role": "finance_manager"})
    );
    assert_eq!(steps[1]["eligible_user_ids"], json!([2]));
    assert_eq!(steps[1]["activated_at"], Value::Null);
    assert_eq!(audit_actions(i), ["instance_created", "step_activated"]);
    let audit = array(&i["audit"]);
    assert_eq!(audit[0]["instance_id"], json!(2));
    assert_eq!(audit[0]["actor_user_id"], json!(3));
    assert_eq!(audit[1]["step_id"], json!(3));
    assert_instance_times(i);

    // The stored instance is what was returned.
    let fetched = h.get(&format!("{INSTANCES}/2")).await;
    assert_eq!(fetched.status, StatusCode::OK);
    assert_eq!(fetched.body, res.body);
}

#[tokio::test]
async fn trigger_without_context_has_null_context() {
    let h = store().await;
    let res = h
        .trigger(&json!({
            "event": "unit.price_update_requested",
            "entity_type": "unit",
            "entity_id": 4,
            "initiated_by": 1
        }))
        .await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.body);
    assert_eq!(res.body["template_id"], json!(2));
    assert_eq!(res.body["context"], Value::Null);
    assert_eq!(
        res.body["steps"][1]["approver"],
        json!({"type": "user", "user_id": 2})
    );
    assert_eq!(res.body["steps"][1]["eligible_user_ids"], json!([2]));
}

#[tokio::test]
async fn trigger_twice_for_same_entity_is_409_instance_already_active() {
    let h = store().await;
    // The fixture instance already covers booking 1.
    assert_error(
        &h.trigger(&booking_trigger(1)).await,
        StatusCode::CONFLICT,
        "instance_already_active",
    );
    assert_eq!(
        h.trigger(&booking_trigger(2)).await.status,
        StatusCode::CREATED
    );
    assert_error(
        &h.trigger(&booking_trigger(2)).await,
        StatusCode::CONFLICT,
        "instance_already_active",
    );
    // Nothing was created by the refused triggers.
    assert_error(
        &h.get(&format!("{INSTANCES}/3")).await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
}

#[tokio::test]
async fn trigger_for_unknown_event_is_422_no_active_template() {
    let h = store().await;
    let res = h
        .trigger(&json!({
            "event": "lease.renewal_requested",
            "entity_type": "lease",
            "entity_id": 1,
            "initiated_by": 1
        }))
        .await;
    let message = assert_error(&res, StatusCode::UNPROCESSABLE_ENTITY, "no_active_template");
    assert!(message.contains("lease.renewal_requested"), "{message}");
}

#[tokio::test]
async fn trigger_by_unknown_user_is_422_unknown_user() {
    let h = store().await;
    let mut body = booking_trigger(2);
    body["initiated_by"] = json!(99);
    let message = assert_error(
        &h.trigger(&body).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "unknown_user",
    );
    assert!(message.contains("initiated_by"), "{message}");
}

#[tokio::test]
async fn trigger_with_empty_role_is_422_no_eligible_approver() {
    let h = store().await;
    // User 2 is the only finance manager; commission step 1 is role finance_manager.
    h.service
        .put_user(user_with_roles(2, &[]))
        .await
        .expect("user 2 loses its roles");
    let res = h
        .trigger(&json!({
            "event": "commission.approval_requested",
            "entity_type": "commission",
            "entity_id": 1,
            "initiated_by": 3
        }))
        .await;
    assert_error(
        &res,
        StatusCode::UNPROCESSABLE_ENTITY,
        "no_eligible_approver",
    );
    assert_error(
        &h.get(&format!("{INSTANCES}/2")).await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
}

#[tokio::test]
async fn trigger_for_entity_type_of_another_template_is_422() {
    let h = store().await;
    let mut body = booking_trigger(2);
    body["entity_type"] = json!("unit");
    let res = h.trigger(&body).await;
    assert_validation(&res, "entity_type");
    assert_error(
        &h.get(&format!("{INSTANCES}/2")).await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
}

#[tokio::test]
async fn get_instance_returns_steps_and_audit() {
    let h = store().await;
    let res = h.get(&format!("{INSTANCES}/1")).await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.body);
    assert_json(&res);
    let i = &res.body;
    assert_eq!(i["id"], json!(1));
    assert_eq!(i["template_id"], json!(1));
    assert_eq!(i["template_version"], json!(1));
    assert_eq!(i["event"], json!("booking.cancellation_requested"));
    assert_eq!(i["entity_type"], json!("booking"));
    assert_eq!(i["entity_id"], json!(1));
    assert_eq!(i["initiated_by"], json!(3));
    assert_eq!(i["status"], json!("in_progress"));
    assert_eq!(i["context"], json!({"reason": "customer relocating"}));
    assert_eq!(i["completed_at"], Value::Null);
    let steps = array(&i["steps"]);
    assert_eq!(steps.len(), 2);
    assert_eq!(steps[0]["id"], json!(1));
    assert_eq!(steps[0]["name"], json!("Sales manager review"));
    assert_eq!(steps[0]["eligible_user_ids"], json!([1]));
    assert_eq!(steps[1]["id"], json!(2));
    assert_eq!(step_statuses(i), ["awaiting_action", "pending"]);
    for step in steps {
        assert_eq!(step["acted_by_user_id"], Value::Null);
        assert_eq!(step["comment"], Value::Null);
        assert_eq!(step["acted_at"], Value::Null);
    }
    assert_eq!(audit_actions(i), ["instance_created", "step_activated"]);
    assert_instance_times(i);
}
