//! Driving adapter, HTTP transport: request ids and the request log, as a tower layer around
//! the routes' service (the API and the pages alike, so that errors and 404s get them too).
//!
//! Each request gets an id: the client's `x-request-id` when it sends a usable one (1 to 128
//! visible ASCII characters), else a fresh UUID v4. The id is returned in `x-request-id` on
//! every answer and recorded on the `http` span that every log line of the request is emitted
//! in; when the answer is ready, one `request` line at info level gives the route template
//! (never the raw path), status, duration and id. A 405 gets its `Allow` header here, from
//! the same list of routes, since the router's rejection doesn't know the path.

use std::fmt::Write as _;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use tower_service::Service;
use tracing::Instrument as _;
use warp::http::header::{ALLOW, HeaderValue};
use warp::http::{Request, StatusCode};
use warp::reply::Response;

use super::metrics::{allowed_methods, route_template};

/// The header that carries the id, both ways.
pub const REQUEST_ID: &str = "x-request-id";

/// Longest id taken from a client; a longer one is replaced, as is one with other characters.
const MAX_ID_LEN: usize = 128;

/// The routes' service with request ids and the request log.
#[derive(Clone)]
pub struct RequestIds<S> {
    inner: S,
}

impl<S> RequestIds<S> {
    pub fn new(inner: S) -> Self {
        Self { inner }
    }
}

/// The client's id if it is usable, else a new one.
fn request_id(given: Option<&HeaderValue>) -> HeaderValue {
    given
        .filter(|value| {
            let bytes = value.as_bytes();
            !bytes.is_empty()
                && bytes.len() <= MAX_ID_LEN
                && bytes.iter().all(|b| (0x21..=0x7e).contains(b))
        })
        .cloned()
        .unwrap_or_else(new_id)
}

/// A random UUID (version 4), from the operating system's generator.
pub fn new_id() -> HeaderValue {
    let mut bytes = [0u8; 16];
    // Should the generator fail, the clock's nanoseconds still tell requests apart.
    if getrandom::fill(&mut bytes).is_err() {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        bytes = nanos.to_le_bytes();
    }
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let mut text = String::with_capacity(36);
    for (i, byte) in bytes.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            text.push('-');
        }
        let _ = write!(text, "{byte:02x}");
    }
    // Hex digits and dashes are a valid header value.
    HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static("unknown"))
}

/// The route template a log line names: the API's from its list of routes, the pages' as one.
fn route_of(method: &str, path: &str) -> &'static str {
    match route_template(method, path) {
        "unmatched" if path == "/ui" || path.starts_with("/ui/") => "/ui/*",
        route => route,
    }
}

impl<S, B> Service<Request<B>> for RequestIds<S>
where
    S: Service<Request<B>, Response = Response>,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<B>) -> Self::Future {
        let started = Instant::now();
        let id = request_id(request.headers().get(REQUEST_ID));
        // The handlers see the id that is answered and logged.
        request.headers_mut().insert(REQUEST_ID, id.clone());
        let method = request.method().clone();
        let path = request.uri().path().to_owned();
        let span = tracing::info_span!(
            "http",
            request_id = id.to_str().unwrap_or_default(),
            method = method.as_str(),
        );
        let answer = span.in_scope(|| self.inner.call(request));
        Box::pin(
            async move {
                let mut response = answer.await?;
                let route = route_of(method.as_str(), &path);
                let status = response.status();
                let headers = response.headers_mut();
                headers.insert(REQUEST_ID, id);
                if status == StatusCode::METHOD_NOT_ALLOWED && !headers.contains_key(ALLOW) {
                    let allowed = allowed_methods(&path).join(", ");
                    if let Ok(value) = HeaderValue::from_str(&allowed) {
                        headers.insert(ALLOW, value);
                    }
                }
                tracing::info!(
                    route,
                    status = status.as_u16(),
                    duration_us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX),
                    "request"
                );
                Ok(response)
            }
            .instrument(span),
        )
    }
}

#[cfg(test)]
mod tests;
