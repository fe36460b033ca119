//! The webhook receiver of the event-delivery scenario: an HTTP server on 127.0.0.1, on its own
//! thread (so the load loop can't delay its clock readings), that answers 204 to every delivery
//! and records how long after its `occurred_at` each event arrived.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use hdrhistogram::Histogram;
use tokio::sync::oneshot;
use warp::Filter;

use crate::load::histogram;

/// What the receiver saw since it was last [`Receiver::reset`].
#[derive(Default)]
struct Seen {
    latencies: Option<Histogram<u64>>,
    ids: HashSet<String>,
}

pub struct Receiver {
    /// The URL to subscribe (`http://127.0.0.1:PORT/hook`).
    pub url: String,
    seen: Arc<Mutex<Seen>>,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Receiver {
    /// Starts listening on a free port.
    pub fn start() -> Result<Self, String> {
        let seen = Arc::new(Mutex::new(Seen::default()));
        let (stop, stopped) = oneshot::channel::<()>();
        let (bound, address) = std::sync::mpsc::channel::<Result<SocketAddr, String>>();
        let state = Arc::clone(&seen);
        let thread =
            std::thread::spawn(move || {
                let runtime = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(r) => r,
                    Err(e) => {
                        let _ = bound.send(Err(e.to_string()));
                        return;
                    }
                };
                runtime.block_on(async move {
                    let route = warp::post()
                        .and(warp::path("hook"))
                        .and(warp::body::bytes())
                        .map(move |body: bytes::Bytes| {
                            record(&state, &body);
                            warp::http::StatusCode::NO_CONTENT
                        });
                    let listener =
                        match tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
                            .await
                        {
                            Ok(l) => l,
                            Err(e) => {
                                let _ = bound.send(Err(e.to_string()));
                                return;
                            }
                        };
                    let _ = bound.send(listener.local_addr().map_err(|e| e.to_string()));
                    warp::serve(route)
                        .incoming(listener)
                        .graceful(async {
                            let _ = stopped.await;
                        })
                        .run()
                        .await;
                });
            });
        let addr = address
            .recv()
            .map_err(|e| format!("the receiver did not start: {e}"))??;
        Ok(Self {
            url: format!("http://{addr}/hook"),
            seen,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// Forgets everything seen so far.
    pub fn reset(&self) {
        *self.seen.lock().unwrap_or_else(|p| p.into_inner()) = Seen::default();
    }

    /// Distinct events received since the last reset.
    pub fn distinct(&self) -> usize {
        self.seen
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .ids
            .len()
    }

    /// The latencies (µs from `occurred_at` to arrival) since the last reset.
    pub fn latencies(&self) -> Histogram<u64> {
        self.seen
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .latencies
            .clone()
            .unwrap_or_else(histogram)
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Notes one delivery: its id, and the time since the event occurred (0 if the clocks disagree).
fn record(seen: &Mutex<Seen>, body: &[u8]) {
    let arrived = chrono::Utc::now();
    let Ok(event) = serde_json::from_slice::<serde_json::Value>(body) else {
        return;
    };
    let occurred = event["occurred_at"]
        .as_str()
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok());
    let mut seen = seen.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(id) = event["id"].as_str() {
        seen.ids.insert(id.to_owned());
    }
    if let Some(occurred) = occurred {
        let micros = (arrived - occurred.with_timezone(&chrono::Utc))
            .num_microseconds()
            .unwrap_or(0)
            .max(1) as u64;
        seen.latencies
            .get_or_insert_with(histogram)
            .saturating_record(micros);
    }
}
