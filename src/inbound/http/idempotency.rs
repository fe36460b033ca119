//! Driving adapter, HTTP: the `Idempotency-Key` header of state-changing `POST`s, how a keyed
//! request is identified, and how its answer is given (the first time, or replayed).
//!
//! A keyed request is identified by a SHA-256 digest of its method, path and body; the body is
//! taken as parsed JSON and serialised again with sorted keys, so a retry that only reorders keys
//! or spacing is the same request. The answer is rendered once, as a status and a body, and the
//! store keeps it in the transaction of the effect; a replay sends the kept answer again with
//! `Idempotent-Replayed: true`.

use serde::Serialize;
use sha2::{Digest, Sha256};
use warp::Filter;
use warp::http::header::{CONTENT_TYPE, HeaderMap, HeaderValue};
use warp::http::{Method, StatusCode};
use warp::reply::Response;

use super::body::JsonObject;
use super::errors::ApiError;
use crate::domain::model::{Answer, Done, IdempotencyKey, Once};

/// The request header that carries the key.
pub const KEY_HEADER: &str = "idempotency-key";

/// The response header that marks a replayed answer.
pub const REPLAYED_HEADER: &str = "idempotent-replayed";

/// The raw `Idempotency-Key` header values, checked by the handler so that a bad key is answered
/// like any other bad input.
#[derive(Debug, Default, Clone)]
pub struct KeyHeader(Vec<HeaderValue>);

impl KeyHeader {
    /// The key, if one was sent. A key sent twice, or not 1 to 255 printable ASCII, is a 422.
    fn key(&self) -> Result<Option<IdempotencyKey>, ApiError> {
        match self.0.as_slice() {
            [] => Ok(None),
            [value] => {
                let text = value.to_str().map_err(|_| {
                    ApiError::validation("Idempotency-Key", "must be printable ASCII")
                })?;
                Ok(Some(IdempotencyKey::new(text)?))
            }
            _ => Err(ApiError::validation("Idempotency-Key", "must be sent once")),
        }
    }
}

/// Extracts the `Idempotency-Key` header values; never rejects.
pub fn key_header() -> impl Filter<Extract = (KeyHeader,), Error = std::convert::Infallible> + Clone
{
    warp::header::headers_cloned()
        .map(|headers: HeaderMap| KeyHeader(headers.get_all(KEY_HEADER).iter().cloned().collect()))
}

/// How a handler answers a success: `status`, with `dto(value)` as the JSON body. The same
/// function renders the answer kept for retries and the one sent now.
pub fn render<T, D>(
    status: StatusCode,
    dto: fn(&T) -> D,
) -> impl Fn(&T) -> Answer + Copy + Send + Sync + 'static
where
    T: 'static,
    D: Serialize + 'static,
{
    move |value| match serde_json::to_string(&dto(value)) {
        Ok(body) => Answer {
            status: status.as_u16(),
            body,
        },
        Err(error) => {
            // The DTOs are plain structs, so this does not happen; if it did, the kept answer
            // must not claim a success whose body is missing.
            tracing::error!(%error, "response body could not be serialised");
            let error = ApiError::internal();
            Answer {
                status: error.status.as_u16(),
                body: serde_json::json!({"error": {"code": error.code.as_str(), "message": error.message}})
                    .to_string(),
            }
        }
    }
}

/// What makes this request idempotent, when it carries a key: the key, the request's digest, and
/// `render`.
pub fn once<T>(
    header: &KeyHeader,
    method: &Method,
    path: &str,
    body: &JsonObject,
    render: impl Fn(&T) -> Answer + Send + Sync + 'static,
) -> Result<Option<Once<T>>, ApiError> {
    let Some(key) = header.key()? else {
        return Ok(None);
    };
    Ok(Some(Once {
        key,
        request: digest(method, path, body),
        render: Box::new(move |value| render(value)),
    }))
}

/// The request's identity: hex SHA-256 of `METHOD path`, a newline, and the body with its keys
/// sorted (a `serde_json` object is a sorted map).
fn digest(method: &Method, path: &str, body: &JsonObject) -> String {
    let mut hasher = Sha256::new();
    hasher.update(method.as_str().as_bytes());
    hasher.update(b" ");
    hasher.update(path.as_bytes());
    hasher.update(b"\n");
    // Serialising a map of JSON values can't fail.
    hasher.update(serde_json::to_string(body).unwrap_or_default().as_bytes());
    hasher
        .finalize()
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// The response to a use case that may have been a retry: the answer rendered now, or the kept
/// one marked as replayed.
pub fn respond<T>(done: Done<T>, render: impl Fn(&T) -> Answer) -> Response {
    match done {
        Done::Fresh(value) => response(render(&value), false),
        Done::Replayed(answer) => response(answer, true),
    }
}

fn response(answer: Answer, replayed: bool) -> Response {
    let mut response = Response::new(answer.body.into());
    *response.status_mut() =
        StatusCode::from_u16(answer.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    if replayed {
        headers.insert(REPLAYED_HEADER, HeaderValue::from_static("true"));
    }
    response
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn object(value: serde_json::Value) -> JsonObject {
        match value {
            serde_json::Value::Object(map) => map,
            other => panic!("not an object: {other}"),
        }
    }

    fn header(values: &[&[u8]]) -> KeyHeader {
        KeyHeader(
            values
                .iter()
                .map(|v| HeaderValue::from_bytes(v).unwrap())
                .collect(),
        )
    }

    fn render_id(value: &i64) -> Answer {
        Answer {
            status: 201,
            body: format!("{{\"id\":{value}}}"),
        }
    }

    #[test]
    fn no_header_means_no_key() {
        let once = once(
            &KeyHeader::default(),
            &Method::POST,
            "/x",
            &object(json!({})),
            render_id,
        );
        assert!(once.unwrap().is_none());
    }

    #[test]
    fn bad_keys_are_validation_errors_naming_the_header() {
        for values in [
            &[&b""[..]][..],
            &[&b"caf\xc3\xa9"[..]],
            &[&b"a"[..], &b"b"[..]],
        ] {
            let error = once(
                &header(values),
                &Method::POST,
                "/x",
                &object(json!({})),
                render_id,
            )
            .unwrap_err();
            assert_eq!(error.code.as_str(), "validation_failed", "{values:?}");
            assert!(
                error.message.contains("Idempotency-Key"),
                "{}",
                error.message
            );
        }
    }

    #[test]
    fn the_digest_ignores_key_order_but_not_values_paths_or_methods() {
        let digest_of = |method: &Method, path: &str, body: serde_json::Value| {
            once(&header(&[b"k"]), method, path, &object(body), render_id)
                .unwrap()
                .unwrap()
                .request
        };
        let base = digest_of(&Method::POST, "/a", json!({"x": 1, "y": [1, 2]}));
        assert_eq!(base.len(), 64);
        assert_eq!(
            base,
            digest_of(&Method::POST, "/a", json!({"y": [1, 2], "x": 1}))
        );
        assert_ne!(
            base,
            digest_of(&Method::POST, "/a", json!({"x": 2, "y": [1, 2]}))
        );
        assert_ne!(
            base,
            digest_of(&Method::POST, "/b", json!({"x": 1, "y": [1, 2]}))
        );
        assert_ne!(
            base,
            digest_of(&Method::PUT, "/a", json!({"x": 1, "y": [1, 2]}))
        );
    }

    #[test]
    fn replays_carry_the_kept_answer_and_the_replayed_header() {
        let kept = Answer {
            status: 201,
            body: r#"{"id":7}"#.to_owned(),
        };
        let replayed = respond::<i64>(Done::Replayed(kept), render_id);
        assert_eq!(replayed.status(), StatusCode::CREATED);
        assert_eq!(replayed.headers()[REPLAYED_HEADER], "true");
        assert_eq!(replayed.headers()[CONTENT_TYPE], "application/json");

        let fresh = respond(Done::Fresh(8_i64), render_id);
        assert_eq!(fresh.status(), StatusCode::CREATED);
        assert!(fresh.headers().get(REPLAYED_HEADER).is_none());
    }
}
