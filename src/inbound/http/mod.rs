//! The HTTP adapter (warp): routes under `/api/v1/workflow` plus `/healthz`.
//!
//! `filters` match paths and methods and read bodies; `handlers` turn the parsed request into a
//! service call and the result into a response; `dto` holds the wire formats; `errors` maps every
//! failure to a status and error body. Routes match the path before the method, so that an
//! unknown path is a 404 and a known path with the wrong method a 405.

pub mod dto;
pub mod errors;
pub mod handlers;

use std::future::Future;
use std::sync::Arc;

use bytes::{Buf, BufMut, BytesMut};
use futures_util::{Stream, StreamExt};
use serde_json::{Map, Value};
use tokio::net::TcpListener;
use warp::{Filter, Rejection, Reply};

use crate::domain::WorkflowService;
use crate::domain::ports::{Clock, RoleResolver, WorkflowRepository};
use errors::ApiError;

/// Largest request body accepted.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// Every route of the API, with errors rendered as JSON.
pub fn routes<R, U, C>(
    service: Arc<WorkflowService<R, U, C>>,
) -> impl Filter<Extract = (impl Reply,), Error = std::convert::Infallible> + Clone
where
    R: WorkflowRepository,
    U: RoleResolver,
    C: Clock,
{
    let with = move || {
        let service = Arc::clone(&service);
        warp::any().map(move || Arc::clone(&service))
    };
    let api = warp::path("api")
        .and(warp::path("v1"))
        .and(warp::path("workflow"));

    let trigger = api
        .and(warp::path("instances"))
        .and(warp::path::end())
        .and(warp::post())
        .and(with())
        .and(json_body())
        .and_then(handlers::trigger);
    let instance = api
        .and(warp::path!("instances" / String))
        .and(warp::get())
        .and(with())
        .and_then(handlers::instance);
    let template = api
        .and(warp::path!("templates" / String))
        .and(warp::get())
        .and(with())
        .and_then(handlers::template);
    let update_template = api
        .and(warp::path!("templates" / String))
        .and(warp::put())
        .and(with())
        .and(json_body())
        .and_then(handlers::update_template);
    let pending = api
        .and(warp::path!("steps" / "pending"))
        .and(warp::get())
        .and(with())
        .and(warp::query::<Vec<(String, String)>>())
        .and_then(handlers::pending_steps);
    let approve = api
        .and(warp::path!("steps" / String / "approve"))
        .and(warp::post())
        .and(with())
        .and(json_body())
        .and_then(handlers::approve);
    let reject = api
        .and(warp::path!("steps" / String / "reject"))
        .and(warp::post())
        .and(with())
        .and(json_body())
        .and_then(handlers::reject);
    let health = warp::path!("healthz")
        .and(warp::get())
        .and(with())
        .and_then(handlers::health);

    trigger
        .or(instance)
        .unify()
        .or(template)
        .unify()
        .or(update_template)
        .unify()
        .or(pending)
        .unify()
        .or(approve)
        .unify()
        .or(reject)
        .unify()
        .or(health)
        .unify()
        .recover(errors::recover)
        .unify()
        .with(warp::log::custom(|info| {
            tracing::debug!(method = %info.method(), path = info.path(), status = info.status().as_u16(), elapsed_us = info.elapsed().as_micros() as u64, "request");
        }))
}

/// Serves `routes` on `listener` until `shutdown` completes, then finishes in-flight requests.
pub async fn serve<F>(
    listener: TcpListener,
    routes: F,
    shutdown: impl Future<Output = ()> + Send + 'static,
) where
    F: Filter + Clone + Send + Sync + 'static,
    F::Extract: Reply,
{
    warp::serve(routes)
        .incoming(listener)
        .graceful(shutdown)
        .run()
        .await;
}

/// A JSON object body: JSON content type (else 415), at most [`MAX_BODY_BYTES`] (else 413),
/// well-formed and an object (else 400).
fn json_body() -> impl Filter<Extract = (Map<String, Value>,), Error = Rejection> + Clone {
    // Headers are read raw: a malformed value is then a clear 415 (or ignored, for a bad
    // length), never a framework rejection.
    warp::header::headers_cloned()
        .and(warp::body::stream())
        .and_then(|headers: warp::http::HeaderMap, body| async move {
            let text = |name| {
                headers
                    .get(name)
                    .and_then(|v: &warp::http::HeaderValue| v.to_str().ok())
                    .map(str::to_owned)
            };
            let content_type = text(warp::http::header::CONTENT_TYPE);
            let length = text(warp::http::header::CONTENT_LENGTH).and_then(|v| v.parse().ok());
            read_json_object(content_type, length, body)
                .await
                .map_err(warp::reject::custom)
        })
}

fn is_json(content_type: &str) -> bool {
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

/// Most of an oversized body read (and thrown away) before answering 413. Answering while the
/// client is still sending makes many clients report a broken connection instead of the 413;
/// past this bound the connection is simply closed.
const MAX_DRAIN_BYTES: u64 = 1024 * 1024;

/// Reads and discards the rest of a body, `seen` bytes of it being already read, up to
/// [`MAX_DRAIN_BYTES`] in all.
async fn drain<S, B>(mut body: std::pin::Pin<&mut S>, mut seen: u64)
where
    S: Stream<Item = Result<B, warp::Error>>,
    B: Buf,
{
    while seen <= MAX_DRAIN_BYTES {
        match body.next().await {
            Some(Ok(chunk)) => seen += chunk.remaining() as u64,
            _ => return,
        }
    }
}

async fn read_json_object<S, B>(
    content_type: Option<String>,
    length: Option<u64>,
    body: S,
) -> Result<Map<String, Value>, ApiError>
where
    S: Stream<Item = Result<B, warp::Error>>,
    B: Buf,
{
    if !content_type.as_deref().is_some_and(is_json) {
        return Err(ApiError::unsupported_media_type());
    }
    let mut body = std::pin::pin!(body);
    if length.is_some_and(|n| n > MAX_BODY_BYTES as u64) {
        drain(body, 0).await;
        return Err(ApiError::payload_too_large(MAX_BODY_BYTES));
    }
    let mut buffer = BytesMut::new();
    while let Some(chunk) = body.next().await {
        let chunk = chunk
            .map_err(|e| ApiError::invalid_json(format!("The body could not be read: {e}.")))?;
        if buffer.len() + chunk.remaining() > MAX_BODY_BYTES {
            drain(body, (buffer.len() + chunk.remaining()) as u64).await;
            return Err(ApiError::payload_too_large(MAX_BODY_BYTES));
        }
        buffer.put(chunk);
    }
    match serde_json::from_slice::<Value>(&buffer) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(ApiError::invalid_json(
            "The body must be a JSON object, like {\"field\": value}.",
        )),
        Err(e) => Err(ApiError::invalid_json(format!(
            "The body is not well-formed JSON ({e})."
        ))),
    }
}

#[cfg(test)]
mod tests;
