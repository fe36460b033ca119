//! Route tests of the HTTP adapter against the in-memory store: every endpoint, status and error
//! code of the contract (DESIGN.md), driven through `warp::test` without a socket.

use std::convert::Infallible;
use std::sync::Arc;

use serde_json::{Value, json};
use tokio::sync::Notify;
use warp::http::StatusCode;
use warp::test::{RequestBuilder, request};
use warp::{Filter, Reply};

use super::{MAX_BODY_BYTES, routes};
use crate::app;
use crate::demo::demo_data;
use crate::domain::model::UserId;
use crate::outbound::memory::MemoryStore;

const INSTANCES: &str = "/api/v1/workflow/instances";

// ----- harness -----

/// A fresh store with the demo data and the sample instance (instance 1: steps 1 and 2, step 1
/// awaiting user 1), and the routes over it.
struct Harness<F> {
    store: Arc<MemoryStore>,
    routes: F,
}

/// A response with its body parsed as JSON (`Value::Null` when it is not JSON).
struct Res {
    status: StatusCode,
    content_type: Option<String>,
    body: Value,
}

async fn harness()
-> Harness<impl Filter<Extract = (impl Reply,), Error = Infallible> + Clone + 'static> {
    let store = Arc::new(MemoryStore::new());
    let demo = demo_data();
    store.load_reference_data(&demo);
    app::create_sample_instance(Arc::clone(&store), &demo)
        .await
        .expect("the sample instance is created");
    let service = Arc::new(app::service(Arc::clone(&store), Arc::new(Notify::new())));
    Harness {
        store,
        routes: routes(service),
    }
}

impl<F> Harness<F>
where
    F: Filter<Error = Infallible> + 'static,
    F::Extract: Reply + Send,
{
    async fn send(&self, req: RequestBuilder) -> Res {
        let response = req.reply(&self.routes).await;
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body = serde_json::from_slice(response.body()).unwrap_or(Value::Null);
        Res {
            status: response.status(),
            content_type,
            body,
        }
    }

    async fn get(&self, path: &str) -> Res {
        self.send(request().method("GET").path(path)).await
    }

    async fn post(&self, path: &str, body: &Value) -> Res {
        self.send(json_request("POST", path, body)).await
    }

    async fn put(&self, path: &str, body: &Value) -> Res {
        self.send(json_request("PUT", path, body)).await
    }

    async fn trigger(&self, body: &Value) -> Res {
        self.post(INSTANCES, body).await
    }

    async fn approve(&self, step: i64, body: &Value) -> Res {
        self.post(&format!("/api/v1/workflow/steps/{step}/approve"), body)
            .await
    }

    async fn reject(&self, step: i64, body: &Value) -> Res {
        self.post(&format!("/api/v1/workflow/steps/{step}/reject"), body)
            .await
    }
}

fn json_request(method: &str, path: &str, body: &Value) -> RequestBuilder {
    request()
        .method(method)
        .path(path)
        .header("content-type", "application/json")
        .body(body.to_string())
}

/// A trigger body for booking `entity_id`'s cancellation by user 3.
fn booking_trigger(entity_id: i64) -> Value {
    json!({
        "event": "booking.cancellation_requested",
        "entity_type": "booking",
        "entity_id": entity_id,
        "initiated_by": 3
    })
}

// ----- assertions -----

/// Checks the status and the error body `{"error":{"code","message"}}` exactly; returns the message.
fn assert_error(res: &Res, status: StatusCode, code: &str) -> String {
    assert_eq!(res.status, status, "status for body {}", res.body);
    assert_json(res);
    let outer = res
        .body
        .as_object()
        .unwrap_or_else(|| panic!("error body is not an object: {}", res.body));
    assert_eq!(outer.len(), 1, "error body has only 'error': {}", res.body);
    let error = outer
        .get("error")
        .and_then(Value::as_object)
        .unwrap_or_else(|| panic!("no 'error' object: {}", res.body));
    assert_eq!(
        error.len(),
        2,
        "error has only code and message: {}",
        res.body
    );
    assert_eq!(
        error.get("code"),
        Some(&json!(code)),
        "code in {}",
        res.body
    );
    let message = error
        .get("message")
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("message is not a string: {}", res.body));
    assert!(!message.trim().is_empty(), "message is empty: {}", res.body);
    message.to_owned()
}

/// A validation error whose message names `field`.
fn assert_validation(res: &Res, field: &str) {
    let message = assert_error(res, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    assert!(
        message.contains(field),
        "message '{message}' should name '{field}'"
    );
}

fn assert_json(res: &Res) {
    let content_type = res.content_type.as_deref().unwrap_or_default();
    assert!(
        content_type.starts_with("application/json"),
        "content type '{content_type}'"
    );
}

/// An RFC 3339 time in UTC, written with a trailing 'Z'.
fn assert_time(value: &Value, what: &str) {
    let text = value
        .as_str()
        .unwrap_or_else(|| panic!("{what} is not a string: {value}"));
    assert!(text.ends_with('Z'), "{what} '{text}' does not end in Z");
    chrono::DateTime::parse_from_rfc3339(text)
        .unwrap_or_else(|e| panic!("{what} '{text}' is not RFC 3339: {e}"));
}

fn assert_optional_time(value: &Value, what: &str) {
    if !value.is_null() {
        assert_time(value, what);
    }
}

/// Every time field of an instance, its steps and its audit.
fn assert_instance_times(instance: &Value) {
    assert_time(&instance["created_at"], "created_at");
    assert_time(&instance["updated_at"], "updated_at");
    assert_optional_time(&instance["completed_at"], "completed_at");
    for step in array(&instance["steps"]) {
        assert_optional_time(&step["acted_at"], "steps[].acted_at");
        assert_optional_time(&step["activated_at"], "steps[].activated_at");
    }
    for entry in array(&instance["audit"]) {
        assert_time(&entry["at"], "audit[].at");
    }
}

fn array(value: &Value) -> &Vec<Value> {
    value
        .as_array()
        .unwrap_or_else(|| panic!("not an array: {value}"))
}

fn audit_actions(instance: &Value) -> Vec<&str> {
    array(&instance["audit"])
        .iter()
        .map(|a| a["action"].as_str().unwrap_or("<not a string>"))
        .collect()
}

fn step_statuses(instance: &Value) -> Vec<&str> {
    array(&instance["steps"])
        .iter()
        .map(|s| s["status"].as_str().unwrap_or("<not a string>"))
        .collect()
}

// ----- POST /instances -----

#[tokio::test]
async fn trigger_creates_instance_with_first_step_awaiting() {
    let h = harness().await;
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
    let h = harness().await;
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
async fn trigger_accepts_json_content_type_with_charset() {
    let h = harness().await;
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
    assert_eq!(res.body["entity_id"], json!(3));
}

#[tokio::test]
async fn trigger_twice_for_same_entity_is_409_instance_already_active() {
    let h = harness().await;
    // The sample instance already covers booking 1.
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
    let h = harness().await;
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
    let h = harness().await;
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
    let h = harness().await;
    // User 2 is the only finance manager; commission step 1 is role finance_manager.
    h.store.set_user_roles(UserId::new(2).unwrap(), &[]);
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
async fn trigger_with_invalid_fields_is_422_naming_the_field() {
    let h = harness().await;
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
            "entity_type of another template",
            with("entity_type", json!("unit")),
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
    // None of them created an instance.
    assert_error(
        &h.get(&format!("{INSTANCES}/2")).await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
}

// ----- body handling -----

#[tokio::test]
async fn body_that_is_not_a_json_object_is_400_invalid_json() {
    let h = harness().await;
    let bodies = [
        "{\"event\":",
        "[1, 2]",
        "",
        "\"text\"",
        "null",
        "42",
        "{} {}",
    ];
    for body in bodies {
        let res = h
            .send(
                request()
                    .method("POST")
                    .path(INSTANCES)
                    .header("content-type", "application/json")
                    .body(body),
            )
            .await;
        assert_eq!(
            res.status,
            StatusCode::BAD_REQUEST,
            "body {body:?}: {}",
            res.body
        );
        assert_error(&res, StatusCode::BAD_REQUEST, "invalid_json");
    }
}

#[tokio::test]
async fn body_on_every_json_route_must_be_well_formed() {
    let h = harness().await;
    for (method, path) in [
        ("PUT", "/api/v1/workflow/templates/2"),
        ("POST", "/api/v1/workflow/steps/1/approve"),
        ("POST", "/api/v1/workflow/steps/1/reject"),
    ] {
        let res = h
            .send(
                request()
                    .method(method)
                    .path(path)
                    .header("content-type", "application/json")
                    .body("[]"),
            )
            .await;
        assert_eq!(res.status, StatusCode::BAD_REQUEST, "{method} {path}");
        assert_error(&res, StatusCode::BAD_REQUEST, "invalid_json");
    }
}

#[tokio::test]
async fn body_without_json_content_type_is_415() {
    let h = harness().await;
    let body = booking_trigger(2).to_string();
    let routes = [
        ("POST", INSTANCES),
        ("PUT", "/api/v1/workflow/templates/2"),
        ("POST", "/api/v1/workflow/steps/1/approve"),
        ("POST", "/api/v1/workflow/steps/1/reject"),
    ];
    for (method, path) in routes {
        let missing = h
            .send(request().method(method).path(path).body(&body))
            .await;
        assert_eq!(
            missing.status,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "{method} {path}"
        );
        assert_error(
            &missing,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
        );

        let text = h
            .send(
                request()
                    .method(method)
                    .path(path)
                    .header("content-type", "text/plain")
                    .body(&body),
            )
            .await;
        assert_eq!(
            text.status,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "{method} {path}"
        );
        assert_error(
            &text,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
        );
    }
    // Nothing was triggered.
    assert_eq!(
        h.get(&format!("{INSTANCES}/2")).await.status,
        StatusCode::NOT_FOUND
    );
}

/// A valid trigger body of exactly `size` bytes (padded inside `context`).
fn trigger_body_of_size(size: usize) -> String {
    let mut body = booking_trigger(2);
    body["context"] = json!({"pad": ""});
    let base = body.to_string().len();
    body["context"]["pad"] = json!("x".repeat(size - base));
    let text = body.to_string();
    assert_eq!(text.len(), size);
    text
}

#[tokio::test]
async fn body_at_the_limit_is_accepted() {
    let h = harness().await;
    let res = h
        .send(
            request()
                .method("POST")
                .path(INSTANCES)
                .header("content-type", "application/json")
                .body(trigger_body_of_size(MAX_BODY_BYTES)),
        )
        .await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.body["error"]);
}

#[tokio::test]
async fn body_over_64_kib_is_413() {
    let h = harness().await;
    assert_eq!(MAX_BODY_BYTES, 64 * 1024);
    let res = h
        .send(
            request()
                .method("POST")
                .path(INSTANCES)
                .header("content-type", "application/json")
                .body(trigger_body_of_size(MAX_BODY_BYTES + 1)),
        )
        .await;
    assert_error(&res, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large");
}

#[tokio::test]
async fn body_over_64_kib_with_understated_length_is_413() {
    let h = harness().await;
    // `body()` sets the true content-length; overwrite it with a small, wrong one so the limit
    // has to be enforced while reading.
    let res = h
        .send(
            request()
                .method("POST")
                .path(INSTANCES)
                .header("content-type", "application/json")
                .body(trigger_body_of_size(MAX_BODY_BYTES * 2))
                .header("content-length", "100"),
        )
        .await;
    assert_error(&res, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large");
    assert_eq!(
        h.get(&format!("{INSTANCES}/2")).await.status,
        StatusCode::NOT_FOUND
    );
}

// ----- GET /instances/{id} -----

#[tokio::test]
async fn get_instance_returns_steps_and_audit() {
    let h = harness().await;
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

#[tokio::test]
async fn get_instance_unknown_or_malformed_id_is_404() {
    let h = harness().await;
    for id in [
        "999",
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

// ----- templates -----

#[tokio::test]
async fn get_templates_return_steps_and_approvers() {
    let h = harness().await;
    let expected = [
        (
            1,
            "booking.cancellation_requested",
            "booking",
            json!({"type": "role", "role": "sales_manager"}),
            json!({"type": "role", "role": "finance_manager"}),
        ),
        (
            2,
            "unit.price_update_requested",
            "unit",
            json!({"type": "role", "role": "sales_manager"}),
            json!({"type": "user", "user_id": 2}),
        ),
        (
            3,
            "commission.approval_requested",
            "commission",
            json!({"type": "role", "role": "finance_manager"}),
            json!({"type": "user", "user_id": 1}),
        ),
    ];
    for (id, event, entity_type, first, second) in expected {
        let res = h.get(&format!("/api/v1/workflow/templates/{id}")).await;
        assert_eq!(res.status, StatusCode::OK, "template {id}: {}", res.body);
        assert_json(&res);
        let t = &res.body;
        assert_eq!(t["id"], json!(id));
        assert_eq!(t["event"], json!(event));
        assert_eq!(t["entity_type"], json!(entity_type));
        assert_eq!(t["version"], json!(1));
        assert_eq!(t["is_active"], json!(true));
        assert!(t["name"].as_str().is_some_and(|n| !n.is_empty()), "{t}");
        let steps = array(&t["steps"]);
        assert_eq!(steps.len(), 2, "template {id}");
        assert_eq!(steps[0]["step_order"], json!(1));
        assert_eq!(steps[0]["approver"], first);
        assert_eq!(steps[1]["step_order"], json!(2));
        assert_eq!(steps[1]["approver"], second);
    }
}

#[tokio::test]
async fn get_template_unknown_or_malformed_id_is_404() {
    let h = harness().await;
    for id in ["4", "999", "abc", "0", "-1", "9223372036854775808"] {
        let res = h.get(&format!("/api/v1/workflow/templates/{id}")).await;
        assert_eq!(res.status, StatusCode::NOT_FOUND, "id {id}: {}", res.body);
        assert_error(&res, StatusCode::NOT_FOUND, "not_found");
    }
}

#[tokio::test]
async fn put_template_in_use_is_409_template_in_use() {
    let h = harness().await;
    let res = h
        .put("/api/v1/workflow/templates/1", &json!({"name": "Renamed"}))
        .await;
    assert_error(&res, StatusCode::CONFLICT, "template_in_use");
    let unchanged = h.get("/api/v1/workflow/templates/1").await;
    assert_eq!(unchanged.body["name"], json!("Booking cancellation"));
    assert_eq!(unchanged.body["version"], json!(1));
}

#[tokio::test]
async fn put_template_updates_and_bumps_the_version() {
    let h = harness().await;
    let res = h
        .put(
            "/api/v1/workflow/templates/2",
            &json!({
                "name": "Unit price update (strict)",
                "steps": [
                    {"name": "Finance first", "approver": {"type": "user", "user_id": 2}},
                    {"name": "Sales sign-off", "approver": {"type": "role", "role": "sales_manager"}},
                    {"name": "Coordinator note", "approver": {"type": "role", "role": "sales_coordinator"}}
                ]
            }),
        )
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.body);
    assert_json(&res);
    let t = &res.body;
    assert_eq!(t["id"], json!(2));
    assert_eq!(t["version"], json!(2));
    assert_eq!(t["name"], json!("Unit price update (strict)"));
    assert_eq!(t["event"], json!("unit.price_update_requested"));
    assert_eq!(t["is_active"], json!(true));
    let steps = array(&t["steps"]);
    assert_eq!(steps.len(), 3);
    for (index, step) in steps.iter().enumerate() {
        assert_eq!(step["step_order"], json!(index + 1));
    }
    assert_eq!(steps[0]["approver"], json!({"type": "user", "user_id": 2}));
    assert_eq!(
        steps[2]["approver"],
        json!({"type": "role", "role": "sales_coordinator"})
    );

    let fetched = h.get("/api/v1/workflow/templates/2").await;
    assert_eq!(fetched.body, res.body);

    // New instances use the new version.
    let triggered = h
        .trigger(&json!({
            "event": "unit.price_update_requested",
            "entity_type": "unit",
            "entity_id": 1,
            "initiated_by": 1
        }))
        .await;
    assert_eq!(triggered.status, StatusCode::CREATED, "{}", triggered.body);
    assert_eq!(triggered.body["template_version"], json!(2));
    assert_eq!(array(&triggered.body["steps"]).len(), 3);
    assert_eq!(triggered.body["steps"][0]["eligible_user_ids"], json!([2]));
}

#[tokio::test]
async fn put_template_with_invalid_body_is_422() {
    let h = harness().await;
    let path = "/api/v1/workflow/templates/2";
    assert_error(
        &h.put(path, &json!({})).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );
    let cases = [
        (
            json!({"steps": [{"name": "A", "approver": {"type": "group", "group": "x"}}]}),
            "steps[0].approver",
        ),
        (
            json!({"steps": [
                {"name": "A", "approver": {"type": "user", "user_id": 1}},
                {"name": "B", "approver": {"type": "wizard"}}
            ]}),
            "steps[1].approver.type",
        ),
        (
            json!({"steps": [{"name": "A", "approver": {"type": "user", "user_id": "2"}}]}),
            "steps[0].approver.user_id",
        ),
        (
            json!({"steps": [{"name": "A", "approver": {"type": "role"}}]}),
            "steps[0].approver.role",
        ),
        (
            json!({"steps": [{"approver": {"type": "user", "user_id": 1}}]}),
            "steps[0].name",
        ),
        (json!({"steps": []}), "steps"),
        (json!({"steps": "none"}), "steps"),
        (json!({"is_active": "yes"}), "is_active"),
        (json!({"name": ""}), "name"),
        (json!({"version": 7}), "version"),
    ];
    for (body, field) in cases {
        let res = h.put(path, &body).await;
        assert_eq!(
            res.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{body}: {}",
            res.body
        );
        assert_validation(&res, field);
    }
    let unchanged = h.get(path).await;
    assert_eq!(unchanged.body["version"], json!(1));
}

#[tokio::test]
async fn put_template_unknown_or_malformed_id_is_404() {
    let h = harness().await;
    for id in ["99", "abc", "0", "-3"] {
        let res = h
            .put(
                &format!("/api/v1/workflow/templates/{id}"),
                &json!({"name": "X"}),
            )
            .await;
        assert_eq!(res.status, StatusCode::NOT_FOUND, "id {id}: {}", res.body);
        assert_error(&res, StatusCode::NOT_FOUND, "not_found");
    }
}

// ----- GET /steps/pending -----

#[tokio::test]
async fn pending_steps_list_the_users_inbox() {
    let h = harness().await;
    let res = h.get("/api/v1/workflow/steps/pending?user_id=1").await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.body);
    assert_json(&res);
    let items = array(&res.body["items"]);
    assert_eq!(items.len(), 1);
    let item = &items[0];
    assert_eq!(item["step_id"], json!(1));
    assert_eq!(item["step_order"], json!(1));
    assert_eq!(item["instance_id"], json!(1));
    assert_eq!(item["event"], json!("booking.cancellation_requested"));
    assert_eq!(item["entity_type"], json!("booking"));
    assert_eq!(item["entity_id"], json!(1));
    assert_eq!(
        item["approver"],
        json!({"type": "role", "role": "sales_manager"})
    );
    assert_time(&item["activated_at"], "activated_at");

    // Step 2 is not reached yet, so user 2 has nothing; user 3 approves nothing.
    for user in [2, 3, 99] {
        let res = h
            .get(&format!("/api/v1/workflow/steps/pending?user_id={user}"))
            .await;
        assert_eq!(res.status, StatusCode::OK, "user {user}: {}", res.body);
        assert_eq!(res.body, json!({"items": []}), "user {user}");
    }
}

#[tokio::test]
async fn pending_steps_honour_the_limit() {
    let h = harness().await;
    assert_eq!(
        h.trigger(&booking_trigger(2)).await.status,
        StatusCode::CREATED
    );
    let all = h.get("/api/v1/workflow/steps/pending?user_id=1").await;
    let ids: Vec<_> = array(&all.body["items"])
        .iter()
        .map(|i| (i["step_id"].clone(), i["instance_id"].clone()))
        .collect();
    assert_eq!(ids, [(json!(1), json!(1)), (json!(3), json!(2))]);

    let one = h
        .get("/api/v1/workflow/steps/pending?user_id=1&limit=1")
        .await;
    assert_eq!(one.status, StatusCode::OK, "{}", one.body);
    let items = array(&one.body["items"]);
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["step_id"], json!(1));

    let most = h
        .get("/api/v1/workflow/steps/pending?limit=500&user_id=1")
        .await;
    assert_eq!(most.status, StatusCode::OK, "{}", most.body);
    assert_eq!(array(&most.body["items"]).len(), 2);
}

#[tokio::test]
async fn pending_steps_with_bad_query_are_422() {
    let h = harness().await;
    let cases = [
        ("", "user_id"),
        ("?limit=5", "user_id"),
        ("?user_id=abc", "user_id"),
        ("?user_id=0", "user_id"),
        ("?user_id=-1", "user_id"),
        ("?user_id=", "user_id"),
        ("?user_id=1&limit=0", "limit"),
        ("?user_id=1&limit=501", "limit"),
        ("?user_id=1&limit=-1", "limit"),
        ("?user_id=1&limit=ten", "limit"),
        ("?user_id=1&page=2", "page"),
    ];
    for (query, field) in cases {
        let res = h
            .get(&format!("/api/v1/workflow/steps/pending{query}"))
            .await;
        assert_eq!(
            res.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "query {query:?}: {}",
            res.body
        );
        assert_validation(&res, field);
    }
}

// ----- decisions -----

#[tokio::test]
async fn decisions_walk_an_instance_to_rejection() {
    let h = harness().await;
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
    let h = harness().await;
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
    assert_eq!(inbox.body, json!({"items": []}));
}

#[tokio::test]
async fn rejecting_the_first_step_cancels_the_rest() {
    let h = harness().await;
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
    let h = harness().await;
    // User 1 loses the sales_manager role after the sample instance was created.
    h.store.set_user_roles(UserId::new(1).unwrap(), &[]);
    let res = h.approve(1, &json!({"acted_by_user_id": 1})).await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.body);
    assert_eq!(step_statuses(&res.body), ["approved", "awaiting_action"]);
}

#[tokio::test]
async fn reject_requires_a_comment() {
    let h = harness().await;
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
    let still = h.get(&format!("{INSTANCES}/1")).await;
    assert_eq!(step_statuses(&still.body), ["awaiting_action", "pending"]);
}

#[tokio::test]
async fn decision_with_invalid_body_is_422_naming_the_field() {
    let h = harness().await;
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
        let res = h.approve(1, &body).await;
        assert_eq!(
            res.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{body}: {}",
            res.body
        );
        assert_validation(&res, field);
    }
    let still = h.get(&format!("{INSTANCES}/1")).await;
    assert_eq!(step_statuses(&still.body), ["awaiting_action", "pending"]);
}

#[tokio::test]
async fn decision_by_unknown_user_is_422_unknown_user() {
    let h = harness().await;
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
async fn decision_on_unknown_or_malformed_step_is_404() {
    let h = harness().await;
    for step in ["999", "x", "0", "-1", "9223372036854775808"] {
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

#[tokio::test]
async fn deciding_a_step_not_reached_yet_is_409() {
    let h = harness().await;
    // Step 2 of the sample instance waits for step 1; user 2 is its approver.
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

// ----- routing -----

#[tokio::test]
async fn wrong_method_on_known_path_is_405() {
    let h = harness().await;
    for (method, path) in [
        ("DELETE", "/api/v1/workflow/instances/1"),
        ("GET", "/api/v1/workflow/steps/1/approve"),
        ("GET", "/api/v1/workflow/steps/1/reject"),
        ("POST", "/healthz"),
        ("GET", INSTANCES),
        ("DELETE", "/api/v1/workflow/templates/1"),
        ("POST", "/api/v1/workflow/steps/pending?user_id=1"),
    ] {
        let res = h.send(request().method(method).path(path)).await;
        assert_eq!(
            res.status,
            StatusCode::METHOD_NOT_ALLOWED,
            "{method} {path}: {}",
            res.body
        );
        assert_error(&res, StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed");
    }
    // The refused DELETE changed nothing.
    assert_eq!(
        h.get(&format!("{INSTANCES}/1")).await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn unknown_route_is_404() {
    let h = harness().await;
    for (method, path) in [
        ("GET", "/nope"),
        ("GET", "/"),
        ("GET", "/api/v1/workflow/unknown"),
        ("GET", "/api/v1/workflow"),
        ("GET", "/api/v2/workflow/instances/1"),
        ("GET", "/api/v1/workflow/instances/1/steps"),
        ("POST", "/api/v1/workflow/steps/1/escalate"),
        ("DELETE", "/nope"),
    ] {
        let res = h.send(request().method(method).path(path)).await;
        assert_eq!(
            res.status,
            StatusCode::NOT_FOUND,
            "{method} {path}: {}",
            res.body
        );
        assert_error(&res, StatusCode::NOT_FOUND, "not_found");
    }
}

#[tokio::test]
async fn healthz_is_200() {
    let h = harness().await;
    let res = h.get("/healthz").await;
    assert_eq!(res.status, StatusCode::OK);
    assert_eq!(res.body, json!({"status": "ok"}));
}
