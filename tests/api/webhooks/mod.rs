//! Webhooks end to end: the server (in process, or the binary) sends deliveries to a receiver
//! that each test starts on 127.0.0.1, which verifies every signature with the subscription's
//! secret and answers as the test scripts it (a status, or hanging past the time-out).

mod delivery;
mod processes;

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use hmac::{Hmac, KeyInit, Mac};
use serde_json::Value;
use sha2::Sha256;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use warp::Filter;
use warp::http::{HeaderMap, StatusCode};

use crate::helpers::{TestApp, eventually};

/// How the receiver answers one request.
#[derive(Debug, Clone, Copy)]
pub enum Answer {
    Status(u16),
    /// Holds the request this long, then answers 200 (too late, past the sender's time-out).
    Hang(Duration),
}

/// One request the receiver got.
#[derive(Debug, Clone)]
pub struct Received {
    pub id: String,
    pub timestamp: i64,
    pub body: Value,
    /// Whether the signature verified with the secret the receiver was given.
    pub verified: bool,
    /// Requests with this webhook-id being answered at the time this one arrived.
    pub concurrent: usize,
}

#[derive(Default)]
struct State {
    secret: Option<String>,
    script: VecDeque<Answer>,
    received: Vec<Received>,
    in_flight: HashMap<String, usize>,
}

/// A webhook receiver on 127.0.0.1.
pub struct Receiver {
    pub addr: SocketAddr,
    state: Arc<Mutex<State>>,
    stop: Option<oneshot::Sender<()>>,
}

impl Receiver {
    /// A receiver on a free port.
    pub async fn start() -> Self {
        Self::on(TcpListener::bind("127.0.0.1:0").await.unwrap())
    }

    /// A receiver on `listener`.
    pub fn on(listener: TcpListener) -> Self {
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(Mutex::new(State::default()));
        let shared = Arc::clone(&state);
        let route = warp::post()
            .and(warp::header::headers_cloned())
            .and(warp::body::bytes())
            .then(move |headers: HeaderMap, body: Bytes| {
                let state = Arc::clone(&shared);
                async move { receive(state, headers, body).await }
            });
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(
            warp::serve(route)
                .incoming(listener)
                .graceful(async move {
                    let _ = stopped.await;
                })
                .run(),
        );
        Self {
            addr,
            state,
            stop: Some(stop),
        }
    }

    /// The URL to subscribe.
    pub fn url(&self) -> String {
        format!("http://{}/hooks", self.addr)
    }

    /// The secret signatures are checked with.
    pub fn set_secret(&self, secret: &str) {
        self.lock().secret = Some(secret.to_owned());
    }

    /// The answers to the next requests, in order; after them, 200.
    pub fn script(&self, answers: &[Answer]) {
        self.lock().script.extend(answers.iter().copied());
    }

    /// What it got so far.
    pub fn received(&self) -> Vec<Received> {
        self.lock().received.clone()
    }

    /// Waits until it got `n` requests (false if not within `timeout`).
    pub async fn wait_for(&self, n: usize, timeout: Duration) -> bool {
        eventually(timeout, || async { self.lock().received.len() >= n }).await
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Stops answering (connections are refused from then on).
    pub fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.stop();
    }
}

async fn receive(
    state: Arc<Mutex<State>>,
    headers: HeaderMap,
    body: Bytes,
) -> warp::reply::Response {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let (id, timestamp, signature) = (
        header("webhook-id"),
        header("webhook-timestamp"),
        header("webhook-signature"),
    );
    let answer = {
        let mut state = state.lock().unwrap();
        let verified = state
            .secret
            .as_deref()
            .is_some_and(|secret| verify(secret, &id, &timestamp, &body, &signature));
        let concurrent = *state.in_flight.get(&id).unwrap_or(&0);
        *state.in_flight.entry(id.clone()).or_default() += 1;
        state.received.push(Received {
            id: id.clone(),
            timestamp: timestamp.parse().unwrap_or_default(),
            body: serde_json::from_slice(&body).unwrap_or(Value::Null),
            verified,
            concurrent,
        });
        state.script.pop_front().unwrap_or(Answer::Status(200))
    };
    let status = match answer {
        Answer::Status(status) => status,
        Answer::Hang(duration) => {
            tokio::time::sleep(duration).await;
            200
        }
    };
    if let Some(n) = state.lock().unwrap().in_flight.get_mut(&id) {
        *n -= 1;
    }
    let mut response = warp::reply::Response::new("".into());
    *response.status_mut() = StatusCode::from_u16(status).unwrap();
    response
}

/// Verifies a Standard Webhooks signature as a receiver would, independently of the sender's
/// code: HMAC-SHA256 of `{id}.{timestamp}.{body}` keyed with the secret's decoded bytes.
pub fn verify(secret: &str, id: &str, timestamp: &str, body: &[u8], header: &str) -> bool {
    let Ok(key) = STANDARD.decode(secret.trim_start_matches("whsec_")) else {
        return false;
    };
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).unwrap();
    mac.update(format!("{id}.{timestamp}.").as_bytes());
    mac.update(body);
    // The header may list several signatures, space-separated.
    header.split(' ').any(|candidate| {
        candidate
            .strip_prefix("v1,")
            .and_then(|b64| STANDARD.decode(b64).ok())
            .is_some_and(|tag| mac.clone().verify_slice(&tag).is_ok())
    })
}

/// Waits until the demo's own event (the sample instance's notification) has been handed on by
/// one of `apps`, so that a subscription made after it gets only the test's events.
pub async fn demo_event_handed_on(apps: &[&TestApp]) {
    let handed_on = eventually(Duration::from_secs(10), || async {
        apps.iter()
            .map(|app| app.callbacks.items().len())
            .sum::<usize>()
            >= 1
    })
    .await;
    assert!(handed_on, "the demo's event was not handed on");
}

/// Subscribes `url` to every event type; returns the subscription (with its secret).
pub async fn subscribe(app: &TestApp, url: &str) -> Value {
    let reply = app
        .post(
            "subscriptions",
            serde_json::json!({"url": url, "event_types": [
                "step.awaiting_action", "step.overdue", "instance.approved",
                "instance.rejected", "instance.cancelled"
            ]}),
        )
        .await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    reply.body
}

/// A subscription's deliveries (with `?status=` when given).
pub async fn deliveries(app: &TestApp, subscription: &Value, status: Option<&str>) -> Vec<Value> {
    let query = status.map(|s| format!("?status={s}")).unwrap_or_default();
    let reply = app
        .get(&format!(
            "subscriptions/{}/deliveries{query}",
            subscription["id"]
        ))
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    reply.body["items"].as_array().cloned().unwrap_or_default()
}
