//! Driving adapter, HTTP transport: reading a JSON request body. What is refused here is refused
//! before any field is looked at: a body without a JSON content type (415), one over
//! [`MAX_BODY_BYTES`] (413), one that is not a well-formed JSON object (400), one whose objects
//! repeat a key (422 naming it: see `unique_keys`). These are rejections, answered by the one
//! `recover`, like warp's own body rejections would be.

use bytes::{Buf, BufMut, BytesMut};
use futures_util::{Stream, StreamExt};
use serde_json::{Map, Value};
use warp::http::{HeaderMap, HeaderValue, header};
use warp::{Filter, Rejection};

use super::MAX_BODY_BYTES;
use super::errors::ApiError;
use super::unique_keys::{self, JsonFault};

/// A request body that is a JSON object, not yet looked into.
pub type JsonObject = Map<String, Value>;

/// A JSON object body: JSON content type (else 415), at most [`MAX_BODY_BYTES`] (else 413),
/// well-formed and an object (else 400), no key repeated in any of its objects (else 422).
pub fn json_body() -> impl Filter<Extract = (JsonObject,), Error = Rejection> + Clone {
    // Headers are read raw: a malformed value is then a clear 415 (or ignored, for a bad
    // length), never a framework rejection.
    warp::header::headers_cloned()
        .and(warp::body::stream())
        .and_then(|headers: HeaderMap, body| async move {
            let text = |name| {
                headers
                    .get(name)
                    .and_then(|v: &HeaderValue| v.to_str().ok())
                    .map(str::to_owned)
            };
            let content_type = text(header::CONTENT_TYPE);
            let length = text(header::CONTENT_LENGTH).and_then(|v| v.parse().ok());
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
) -> Result<JsonObject, ApiError>
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
    match unique_keys::from_slice(&buffer) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(ApiError::invalid_json(
            "The body must be a JSON object, like {\"field\": value}.",
        )),
        Err(JsonFault::Malformed(e)) => Err(ApiError::invalid_json(format!(
            "The body is not well-formed JSON ({e})."
        ))),
        Err(JsonFault::RepeatedKey(path)) => Err(ApiError::validation(
            &path,
            "is given more than once; give each field once",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_content_types_are_recognised() {
        for json in [
            "application/json",
            "Application/JSON; charset=utf-8",
            " application/json ;x=y",
            "application/problem+json",
        ] {
            assert!(is_json(json), "{json}");
        }
        for other in ["text/plain", "application/jsonx", "json", "", "text/json"] {
            assert!(!is_json(other), "{other}");
        }
    }
}
