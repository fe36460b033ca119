//! Driving adapter, HTTP: the webhook endpoints (subscriptions and their deliveries), their
//! body and query types and wire formats, and `GET /metrics` with the deliveries by status.

use std::sync::Arc;

use chrono::Utc;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use warp::http::header::{CONTENT_TYPE, HeaderValue};
use warp::http::{Method, StatusCode};
use warp::reply::Response;

use super::{finish, path_id};
use crate::domain::ports::WorkflowUseCases;
use crate::domain::webhooks::model::{
    Delivery, DeliveryId, DeliveryStatus, EventTypes, Subscription, SubscriptionId,
    SubscriptionRequest, WebhookUrl,
};
use crate::domain::webhooks::ports::WebhookUseCases;
use crate::inbound::http::body::JsonObject;
use crate::inbound::http::errors::ApiError;
use crate::inbound::http::idempotency::{KeyHeader, once, render, respond};
use crate::inbound::http::metrics::Metrics;
use crate::inbound::http::requests::{Array, Text, parse};
use crate::inbound::http::responses::{json, time};

/// The subscription body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = SubscriptionRequest)]
pub struct SubscriptionBody {
    /// Where deliveries go: an http or https URL whose host is a public address.
    #[schema(value_type = String, example = "https://hooks.example.com/approvals")]
    url: Text,
    /// The event types to receive (one or more of `step.awaiting_action`, `step.overdue`,
    /// `instance.approved`, `instance.rejected`, `instance.cancelled`).
    #[schema(value_type = Vec<String>, example = json!(["instance.approved"]))]
    event_types: Array,
}

impl SubscriptionBody {
    /// The domain request.
    pub fn try_into_domain(self) -> Result<SubscriptionRequest, ApiError> {
        let url = WebhookUrl::parse(&self.url.0)?;
        let names = self
            .event_types
            .0
            .iter()
            .enumerate()
            .map(|(i, value)| {
                value.as_str().ok_or_else(|| {
                    ApiError::validation(&format!("event_types[{i}]"), "must be a string")
                })
            })
            .collect::<Result<Vec<&str>, ApiError>>()?;
        let event_types = EventTypes::parse(names)?;
        Ok(SubscriptionRequest { url, event_types })
    }
}

/// A subscription as listed (its secret is shown only when it is created).
#[derive(Debug, Serialize, ToSchema)]
pub struct SubscriptionDto {
    pub id: i64,
    pub url: String,
    pub event_types: Vec<&'static str>,
    pub created_at: String,
    /// Only in the answer to `POST /subscriptions`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
}

impl SubscriptionDto {
    fn listed(s: &Subscription) -> Self {
        Self {
            id: s.id.get(),
            url: s.url.as_str().to_owned(),
            event_types: s
                .event_types
                .kinds()
                .iter()
                .map(|k| k.event_type())
                .collect(),
            created_at: time(s.created_at),
            secret: None,
        }
    }

    fn created(s: &Subscription) -> Self {
        Self {
            secret: Some(s.secret.as_str().to_owned()),
            ..Self::listed(s)
        }
    }
}

/// `{"items":[subscription...]}`
#[derive(Debug, Serialize, ToSchema)]
pub struct SubscriptionsDto {
    pub items: Vec<SubscriptionDto>,
}

/// A delivery of one event to one subscription.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryDto {
    pub id: i64,
    pub subscription_id: i64,
    /// The event's id (the `webhook-id` header).
    pub event_id: String,
    pub event_type: &'static str,
    /// `pending`, `failed`, `delivered` or `dead`.
    pub status: &'static str,
    pub attempts: i32,
    pub last_error: Option<String>,
    pub last_status_code: Option<u16>,
    pub next_attempt_at: Option<String>,
    pub delivered_at: Option<String>,
    pub created_at: String,
}

impl From<&Delivery> for DeliveryDto {
    fn from(d: &Delivery) -> Self {
        Self {
            id: d.id.get(),
            subscription_id: d.subscription_id.get(),
            event_id: d.event_id.clone(),
            event_type: d.event_type.event_type(),
            status: d.status.as_str(),
            attempts: d.attempts,
            last_error: d.last_error.clone(),
            last_status_code: d.last_status_code,
            next_attempt_at: d.next_attempt_at.map(time),
            delivered_at: d.delivered_at.map(time),
            created_at: time(d.created_at),
        }
    }
}

/// `{"items":[delivery...]}`
#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveriesDto {
    pub items: Vec<DeliveryDto>,
}

/// The query of the deliveries list: an optional status (empty: none).
fn status_query(pairs: Vec<(String, String)>) -> Result<Option<DeliveryStatus>, ApiError> {
    let mut status = None;
    for (key, value) in pairs {
        match key.as_str() {
            // An empty value, as an empty form field sends it, filters nothing.
            "status" if value.is_empty() => status = None,
            "status" => {
                status = Some(DeliveryStatus::parse(&value).ok_or_else(|| {
                    ApiError::validation(
                        "status",
                        "must be one of pending, failed, delivered, dead",
                    )
                })?);
            }
            other => {
                return Err(ApiError::validation(
                    other,
                    "is not a known query parameter (expected: status)",
                ));
            }
        }
    }
    Ok(status)
}

/// `POST /api/v1/workflow/subscriptions`
#[utoipa::path(
    post,
    path = "/api/v1/workflow/subscriptions",
    tag = "webhooks",
    operation_id = "create_subscription",
    summary = "Subscribe a URL to event types (the secret is shown only here)",
    params(
        ("Idempotency-Key" = Option<crate::inbound::http::schemas::IdempotencyKeySchema>, Header, description = "Makes a retry of this request safe: the same key with the same request gets the first answer again (with `Idempotent-Replayed: true`); with another request, 422 `idempotency_key_reused`."),
    ),
    request_body(content = SubscriptionBody, content_type = "application/json"),
    responses(
        (status = 201, description = "The subscription, with its signing secret.", body = SubscriptionDto),
        (status = 422, description = "`validation_failed` (a URL that is not http(s), or whose host is a loopback, private or link-local address; an unknown or missing event type) or `idempotency_key_reused`.", body = crate::inbound::http::errors::ErrorBody),
    )
)]
#[tracing::instrument(
    name = "request",
    skip_all,
    fields(method = "POST", route = "/api/v1/workflow/subscriptions", status = tracing::field::Empty)
)]
pub async fn create_subscription<H: WebhookUseCases>(
    hooks: Arc<H>,
    key: KeyHeader,
    body: JsonObject,
) -> Response {
    let result: Result<_, ApiError> = async {
        let answer = render(StatusCode::CREATED, SubscriptionDto::created);
        let once = once(
            &key,
            &Method::POST,
            "/api/v1/workflow/subscriptions",
            &body,
            answer,
        )?;
        let request = parse::<SubscriptionBody>(body, "")?.try_into_domain()?;
        let done = hooks.create_subscription(request, once).await?;
        Ok(respond(done, answer))
    }
    .await;
    finish(result)
}

/// `GET /api/v1/workflow/subscriptions`
#[utoipa::path(
    get,
    path = "/api/v1/workflow/subscriptions",
    tag = "webhooks",
    operation_id = "list_subscriptions",
    summary = "List the subscriptions (without their secrets)",
    responses(
        (status = 200, description = "The subscriptions, by id.", body = SubscriptionsDto),
    )
)]
#[tracing::instrument(
    name = "request",
    skip_all,
    fields(method = "GET", route = "/api/v1/workflow/subscriptions", status = tracing::field::Empty)
)]
pub async fn subscriptions<H: WebhookUseCases>(hooks: Arc<H>) -> Response {
    let result: Result<_, ApiError> = async {
        let items = hooks
            .subscriptions()
            .await?
            .iter()
            .map(SubscriptionDto::listed)
            .collect();
        Ok(json(StatusCode::OK, &SubscriptionsDto { items }))
    }
    .await;
    finish(result)
}

/// `DELETE /api/v1/workflow/subscriptions/{id}`
#[utoipa::path(
    delete,
    path = "/api/v1/workflow/subscriptions/{id}",
    tag = "webhooks",
    operation_id = "delete_subscription",
    summary = "Remove a subscription and its deliveries",
    params(("id" = crate::inbound::http::schemas::PathId, Path, description = "The subscription's id.")),
    responses(
        (status = 204, description = "Removed."),
        (status = 404, description = "`not_found`: no such subscription.", body = crate::inbound::http::errors::ErrorBody),
    )
)]
#[tracing::instrument(
    name = "request",
    skip_all,
    fields(method = "DELETE", route = "/api/v1/workflow/subscriptions/{id}", status = tracing::field::Empty)
)]
pub async fn delete_subscription<H: WebhookUseCases>(raw_id: String, hooks: Arc<H>) -> Response {
    let result: Result<_, ApiError> = async {
        let id = path_id(&raw_id, "subscription", SubscriptionId::new)?;
        hooks.delete_subscription(id).await?;
        let mut response = Response::new(Default::default());
        *response.status_mut() = StatusCode::NO_CONTENT;
        Ok(response)
    }
    .await;
    finish(result)
}

/// `GET /api/v1/workflow/subscriptions/{id}/deliveries?status=`
#[utoipa::path(
    get,
    path = "/api/v1/workflow/subscriptions/{id}/deliveries",
    tag = "webhooks",
    operation_id = "list_deliveries",
    summary = "A subscription's deliveries, newest first",
    params(
        ("id" = crate::inbound::http::schemas::PathId, Path, description = "The subscription's id."),
        ("status" = Option<crate::inbound::http::schemas::DeliveryStatusSchema>, Query, description = "Only deliveries in this status: `pending`, `failed`, `delivered` or `dead`."),
    ),
    responses(
        (status = 200, description = "The deliveries.", body = DeliveriesDto),
        (status = 404, description = "`not_found`: no such subscription.", body = crate::inbound::http::errors::ErrorBody),
        (status = 422, description = "`validation_failed`: an unknown status or parameter.", body = crate::inbound::http::errors::ErrorBody),
    )
)]
#[tracing::instrument(
    name = "request",
    skip_all,
    fields(method = "GET", route = "/api/v1/workflow/subscriptions/{id}/deliveries", status = tracing::field::Empty)
)]
pub async fn deliveries<H: WebhookUseCases>(
    raw_id: String,
    hooks: Arc<H>,
    query: Vec<(String, String)>,
) -> Response {
    let result: Result<_, ApiError> = async {
        let id = path_id(&raw_id, "subscription", SubscriptionId::new)?;
        let status = status_query(query)?;
        let items = hooks
            .deliveries(id, status)
            .await?
            .iter()
            .map(DeliveryDto::from)
            .collect();
        Ok(json(StatusCode::OK, &DeliveriesDto { items }))
    }
    .await;
    finish(result)
}

/// `POST /api/v1/workflow/deliveries/{id}/retry`
#[utoipa::path(
    post,
    path = "/api/v1/workflow/deliveries/{id}/retry",
    tag = "webhooks",
    operation_id = "retry_delivery",
    summary = "Send a failed or dead delivery again, now",
    params(
        ("id" = crate::inbound::http::schemas::PathId, Path, description = "The delivery's id."),
        ("Idempotency-Key" = Option<crate::inbound::http::schemas::IdempotencyKeySchema>, Header, description = "Makes a retry of this request safe: the same key with the same request gets the first answer again (with `Idempotent-Replayed: true`); with another request, 422 `idempotency_key_reused`."),
    ),
    responses(
        (status = 200, description = "The delivery, pending again.", body = DeliveryDto),
        (status = 404, description = "`not_found`: no such delivery.", body = crate::inbound::http::errors::ErrorBody),
        (status = 409, description = "`delivery_not_retryable`: it is pending, delivered, or being sent right now.", body = crate::inbound::http::errors::ErrorBody),
        (status = 422, description = "`idempotency_key_reused`.", body = crate::inbound::http::errors::ErrorBody),
    )
)]
#[tracing::instrument(
    name = "request",
    skip_all,
    fields(method = "POST", route = "/api/v1/workflow/deliveries/{id}/retry", status = tracing::field::Empty)
)]
pub async fn retry_delivery<H: WebhookUseCases>(
    raw_id: String,
    hooks: Arc<H>,
    key: KeyHeader,
) -> Response {
    let result: Result<_, ApiError> = async {
        let id = path_id(&raw_id, "delivery", DeliveryId::new)?;
        let answer = render(StatusCode::OK, |d: &Delivery| DeliveryDto::from(d));
        let path = format!("/api/v1/workflow/deliveries/{id}/retry");
        let once = once(&key, &Method::POST, &path, &JsonObject::new(), answer)?;
        let done = hooks.retry_delivery(id, once).await?;
        Ok(respond(done, answer))
    }
    .await;
    finish(result)
}

/// `GET /metrics`, with the webhook deliveries by status.
#[tracing::instrument(
    name = "request",
    skip_all,
    fields(method = "GET", route = "/metrics", status = tracing::field::Empty)
)]
pub async fn metrics<S: WorkflowUseCases, H: WebhookUseCases>(
    service: Arc<S>,
    hooks: Arc<H>,
    metrics: Arc<Metrics>,
) -> Response {
    let result: Result<_, ApiError> = async {
        let load = service.store_load().await?;
        let counts = hooks.delivery_counts().await?;
        metrics.set_deliveries(&counts);
        let mut response = Response::new(metrics.render(&load, Utc::now()).into());
        response.headers_mut().insert(
            CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        );
        Ok(response)
    }
    .await;
    finish(result)
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;

    fn body(value: Value) -> Result<SubscriptionRequest, String> {
        let Value::Object(map) = value else {
            panic!("not an object")
        };
        parse::<SubscriptionBody>(map, "")
            .and_then(SubscriptionBody::try_into_domain)
            .map_err(|e| e.message)
    }

    #[test]
    fn a_subscription_needs_an_http_url_and_known_event_types() {
        let ok =
            body(json!({"url": "https://h.example.com/x", "event_types": ["instance.approved"]}))
                .unwrap();
        assert_eq!(ok.url.as_str(), "https://h.example.com/x");
        for (bad, field) in [
            (
                json!({"url": "ftp://h/x", "event_types": ["instance.approved"]}),
                "url",
            ),
            (
                json!({"url": "https://h/x", "event_types": []}),
                "event_types",
            ),
            (
                json!({"url": "https://h/x", "event_types": ["nope"]}),
                "event_types",
            ),
            (
                json!({"url": "https://h/x", "event_types": [1]}),
                "event_types[0]",
            ),
            (json!({"event_types": ["instance.approved"]}), "url"),
            (
                json!({"url": "https://h/x", "event_types": ["instance.approved"], "x": 1}),
                "x",
            ),
        ] {
            let message = body(bad.clone()).unwrap_err();
            assert!(message.contains(&format!("'{field}'")), "{bad}: {message}");
        }
    }

    #[test]
    fn the_status_query_is_a_known_status() {
        let q = |pairs: &[(&str, &str)]| {
            status_query(
                pairs
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                    .collect(),
            )
        };
        assert_eq!(q(&[]).unwrap(), None);
        assert_eq!(q(&[("status", "")]).unwrap(), None);
        assert_eq!(
            q(&[("status", "dead")]).unwrap(),
            Some(DeliveryStatus::Dead)
        );
        assert!(
            q(&[("status", "lost")])
                .unwrap_err()
                .message
                .contains("'status'")
        );
        assert!(
            q(&[("state", "dead")])
                .unwrap_err()
                .message
                .contains("'state'")
        );
    }
}
