//! The layer over the real routes (API and a 404), with the log captured as JSON lines.

use std::io::Write;
use std::sync::{Arc, Mutex};

use serde_json::Value;
use tower_service::Service;
use warp::http::{Request, StatusCode};

use super::*;
use crate::domain::ports::MockWorkflowUseCases;
use crate::inbound::http::routes;

/// Log lines written to memory.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn lines(&self) -> Vec<Value> {
        String::from_utf8(self.0.lock().unwrap().clone())
            .unwrap()
            .lines()
            .map(|line| serde_json::from_str(line).expect("a JSON log line"))
            .collect()
    }
}

/// Sends `method path` (with `id` as `x-request-id` if given) through the layer over the API's
/// routes (whose port must not be called), with the log going to `log` as `LOG_FORMAT=json`
/// writes it.
async fn send(method: &str, path: &str, id: Option<&str>, log: &Captured) -> Response {
    let writer = log.clone();
    let subscriber = tracing_subscriber::fmt()
        .json()
        .with_current_span(true)
        .with_span_list(true)
        .with_env_filter("info")
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let mut service = RequestIds::new(warp::service(routes(Arc::new(MockWorkflowUseCases::new()))));
    let mut request = Request::builder().method(method).uri(path);
    if let Some(id) = id {
        request = request.header(REQUEST_ID, id);
    }
    service
        .call(request.body(String::new()).unwrap())
        .await
        .unwrap()
}

/// The one `request` line of the log.
fn request_line(log: &Captured) -> Value {
    let lines: Vec<Value> = log
        .lines()
        .into_iter()
        .filter(|l| l["fields"]["message"] == "request")
        .collect();
    assert_eq!(lines.len(), 1, "{:?}", log.lines());
    lines.into_iter().next().unwrap()
}

#[tokio::test]
async fn a_given_id_is_returned_and_logged_with_the_route_status_and_duration() {
    let log = Captured::default();
    let response = send("GET", "/api/v1/openapi.json", Some("abc-123"), &log).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()[REQUEST_ID], "abc-123");
    let line = request_line(&log);
    assert_eq!(line["level"], "INFO");
    assert_eq!(line["fields"]["route"], "/api/v1/openapi.json");
    assert_eq!(line["fields"]["status"], 200);
    assert!(line["fields"]["duration_us"].is_u64(), "{line}");
    assert_eq!(line["span"]["request_id"], "abc-123", "{line}");
}

#[tokio::test]
async fn a_missing_or_unusable_id_is_replaced_by_a_new_uuid() {
    for given in [None, Some(""), Some("has space"), Some(&*"x".repeat(129))] {
        let log = Captured::default();
        let response = send("GET", "/api/v1/workflow/nowhere", given, &log).await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
        let id = response.headers()[REQUEST_ID].to_str().unwrap().to_owned();
        assert_eq!(id.len(), 36, "{id}");
        assert_eq!(&id[14..15], "4", "version 4: {id}");
        assert_ne!(Some(id.as_str()), given);
        let line = request_line(&log);
        assert_eq!(line["span"]["request_id"], id.as_str());
        assert_eq!(line["fields"]["route"], "unmatched");
        assert_eq!(line["fields"]["status"], 404);
    }
    assert_ne!(new_id(), new_id());
}

#[tokio::test]
async fn a_405_lists_the_allowed_methods() {
    let log = Captured::default();
    let response = send("DELETE", "/api/v1/workflow/templates/3", None, &log).await;
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(response.headers()[ALLOW], "GET, PUT");
    assert!(response.headers().contains_key(REQUEST_ID));
}
