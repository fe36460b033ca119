//! Route tests of the driving HTTP adapter, by use case, through `warp::test` without a socket.
//!
//! Most run against `MockWorkflowUseCases`: they pin statuses, codes, messages and bodies, and
//! what the adapter hands the port (a request refused at the edge must not reach the port at
//! all: a mock without an expectation panics if it is called). The rest run end to end on the
//! in-memory store loaded with the fixtures, where the answer depends on the domain's own
//! behaviour (conflicts, snapshots, a walk through a whole instance).
//!
//! This module is the support the others share: harnesses, requests and assertions.

mod audit;
mod cancel;
mod conditions;
mod decide;
mod delegation;
mod fixtures;
mod framework;
mod idempotency;
mod inbox;
mod search;
mod strict_input;
mod template_authoring;
mod template_versions;
mod templates;
mod trigger;
mod users;
mod webhooks;

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use serde_json::{Value, json};
use warp::http::StatusCode;
use warp::test::{RequestBuilder, request};
use warp::{Filter, Reply};

use super::metrics::Metrics;
use super::{api_with_webhooks, routes};
use crate::domain::WorkflowError;
use crate::domain::ports::{MockWorkflowUseCases, WorkflowUseCases};
use crate::domain::webhooks::WebhookService;
use crate::outbound::clock::SystemClock;
use crate::outbound::memory::MemoryStore;
use crate::outbound::webhooks::AddressGuard;

pub const INSTANCES: &str = "/api/v1/workflow/instances";

/// The routes over a service, and the service itself (to change data behind the routes' back).
pub struct Harness<F, S> {
    routes: F,
    pub service: Arc<S>,
}

/// A response with its body parsed as JSON (`Value::Null` when it is not JSON).
pub struct Res {
    pub status: StatusCode,
    pub content_type: Option<String>,
    pub body: Value,
    pub text: String,
    /// Whether `Idempotent-Replayed: true` came with it.
    pub replayed: bool,
}

/// The routes over a mock port that `setup` gives its expectations.
pub fn mock(
    setup: impl FnOnce(&mut MockWorkflowUseCases),
) -> Harness<
    impl Filter<Extract = (impl Reply,), Error = Infallible> + Clone + 'static,
    MockWorkflowUseCases,
> {
    let mut service = MockWorkflowUseCases::new();
    setup(&mut service);
    let service = Arc::new(service);
    Harness {
        routes: routes(Arc::clone(&service)),
        service,
    }
}

/// The routes over a mock port that must not be called at all.
pub fn unreached() -> Harness<
    impl Filter<Extract = (impl Reply,), Error = Infallible> + Clone + 'static,
    MockWorkflowUseCases,
> {
    mock(|_| {})
}

/// The routes over the real service on a fresh in-memory store holding the fixtures (users,
/// templates 1 to 3, and instance 1 with steps 1 and 2, step 1 awaiting user 1).
pub async fn store() -> Harness<
    impl Filter<Extract = (impl Reply,), Error = Infallible> + Clone + 'static,
    impl WorkflowUseCases,
> {
    let service = Arc::new(fixtures::loaded_service().await);
    // The webhook routes too, over a store of their own.
    let hooks = Arc::new(WebhookService::new(
        Arc::new(MemoryStore::new()),
        Arc::new(AddressGuard::new(false)),
        Arc::new(SystemClock),
        Arc::default(),
    ));
    Harness {
        routes: api_with_webhooks(Arc::clone(&service), hooks, Arc::new(Metrics::new())),
        service,
    }
}

/// A port answer, as the mock's expectations return it.
pub type Answer<T> = Pin<Box<dyn Future<Output = Result<T, WorkflowError>> + Send>>;

/// The port answers `value`.
pub fn answer<T: Send + 'static>(value: T) -> Answer<T> {
    Box::pin(async move { Ok(value) })
}

/// The port does the work and answers `value` (not a replay).
pub fn fresh<T: Send + 'static>(value: T) -> Answer<crate::domain::model::Done<T>> {
    Box::pin(async move { Ok(crate::domain::model::Done::Fresh(value)) })
}

/// The port refuses with `error`.
pub fn refuse<T: Send + 'static>(error: WorkflowError) -> Answer<T> {
    Box::pin(async move { Err(error) })
}

impl<F, S> Harness<F, S>
where
    F: Filter<Error = Infallible> + 'static,
    F::Extract: Reply + Send,
{
    pub async fn send(&self, req: RequestBuilder) -> Res {
        let response = req.reply(&self.routes).await;
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let replayed = response
            .headers()
            .get("idempotent-replayed")
            .is_some_and(|v| v == "true");
        let text = String::from_utf8_lossy(response.body()).into_owned();
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Res {
            status: response.status(),
            content_type,
            body,
            text,
            replayed,
        }
    }

    pub async fn get(&self, path: &str) -> Res {
        self.send(request().method("GET").path(path)).await
    }

    pub async fn post(&self, path: &str, body: &Value) -> Res {
        self.send(json_request("POST", path, body)).await
    }

    pub async fn put(&self, path: &str, body: &Value) -> Res {
        self.send(json_request("PUT", path, body)).await
    }

    pub async fn trigger(&self, body: &Value) -> Res {
        self.post(INSTANCES, body).await
    }

    pub async fn approve(&self, step: i64, body: &Value) -> Res {
        self.post(&format!("/api/v1/workflow/steps/{step}/approve"), body)
            .await
    }

    pub async fn reject(&self, step: i64, body: &Value) -> Res {
        self.post(&format!("/api/v1/workflow/steps/{step}/reject"), body)
            .await
    }
}

pub fn json_request(method: &str, path: &str, body: &Value) -> RequestBuilder {
    request()
        .method(method)
        .path(path)
        .header("content-type", "application/json")
        .body(body.to_string())
}

/// A trigger body for booking `entity_id`'s cancellation by user 3.
pub fn booking_trigger(entity_id: i64) -> Value {
    json!({
        "event": "booking.cancellation_requested",
        "entity_type": "booking",
        "entity_id": entity_id,
        "initiated_by": 3
    })
}

// ----- assertions -----

/// Checks the status and the error body `{"error":{"code","message"}}` exactly; returns the message.
pub fn assert_error(res: &Res, status: StatusCode, code: &str) -> String {
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
pub fn assert_validation(res: &Res, field: &str) {
    let message = assert_error(res, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    assert!(
        message.contains(field),
        "message '{message}' should name '{field}'"
    );
}

pub fn assert_json(res: &Res) {
    let content_type = res.content_type.as_deref().unwrap_or_default();
    assert!(
        content_type.starts_with("application/json"),
        "content type '{content_type}'"
    );
}

/// An RFC 3339 time in UTC, written with a trailing 'Z'.
pub fn assert_time(value: &Value, what: &str) {
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
pub fn assert_instance_times(instance: &Value) {
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

pub fn array(value: &Value) -> &Vec<Value> {
    value
        .as_array()
        .unwrap_or_else(|| panic!("not an array: {value}"))
}

pub fn audit_actions(instance: &Value) -> Vec<&str> {
    array(&instance["audit"])
        .iter()
        .map(|a| a["action"].as_str().unwrap_or("<not a string>"))
        .collect()
}

pub fn step_statuses(instance: &Value) -> Vec<&str> {
    array(&instance["steps"])
        .iter()
        .map(|s| s["status"].as_str().unwrap_or("<not a string>"))
        .collect()
}
