//! Driving adapter, HTTP: `GET /metrics`, the Prometheus text exposition.

use std::sync::Arc;

use chrono::Utc;
use warp::http::StatusCode;
use warp::http::header::{CONTENT_TYPE, HeaderValue};
use warp::reply::Response;

use super::finish;
use crate::domain::ports::WorkflowUseCases;
use crate::inbound::http::errors::ApiError;
use crate::inbound::http::metrics::Metrics;

/// The exposition's content type (Prometheus text format 0.0.4).
const TEXT_FORMAT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// `GET /metrics`
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "operations",
    operation_id = "metrics",
    summary = "Prometheus metrics (text exposition format 0.0.4)",
    responses(
        (status = 200, description = "The metrics.", body = String, content_type = "text/plain; version=0.0.4; charset=utf-8"),
    )
)]
#[tracing::instrument(
    name = "request",
    skip_all,
    fields(method = "GET", route = "/metrics", status = tracing::field::Empty)
)]
pub async fn metrics<S: WorkflowUseCases>(service: Arc<S>, metrics: Arc<Metrics>) -> Response {
    let result: Result<_, ApiError> = async {
        let load = service.store_load().await?;
        let mut response = Response::new(metrics.render(&load, Utc::now()).into());
        *response.status_mut() = StatusCode::OK;
        response
            .headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static(TEXT_FORMAT));
        Ok(response)
    }
    .await;
    finish(result)
}
