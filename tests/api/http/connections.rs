//! Connection hygiene over real sockets, on the in-memory store (the store plays no part): a
//! flood of idle connections beyond the cap can't lock normal clients out, idle and slow
//! clients are closed by their time-outs, protocol errors end only their own connection, and
//! shutdown is not held up by silent clients.

use std::time::{Duration, Instant};

use approvals::inbound::http::ConnectionLimits;
use approvals::outbound::memory::MemoryStore;
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::{TestApp, load_demo, serve_within};

async fn spawn(limits: ConnectionLimits) -> TestApp {
    let store = Arc::new(MemoryStore::new());
    load_demo(&store).await;
    serve_within(store, None, limits).await
}

fn addr(app: &TestApp) -> String {
    app.base.trim_start_matches("http://").to_owned()
}

/// Whether the server has closed `stream` (end of file or reset), waiting at most `wait`.
async fn closed_within(stream: &mut TcpStream, wait: Duration) -> bool {
    let mut buf = [0u8; 1024];
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Err(_) => return false,
            Ok(Ok(0) | Err(_)) => return true,
            // An answer (e.g. a 408 or 400) before the close: keep reading.
            Ok(Ok(_)) => {}
        }
    }
}

/// One request on a fresh connection, as a client that is not part of the flood.
async fn timed_health(app: &TestApp) -> (u16, Duration) {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let started = Instant::now();
    let status = client
        .get(format!("{}/healthz", app.base))
        .send()
        .await
        .map_or(0, |r| r.status().as_u16());
    (status, started.elapsed())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_beyond_the_cap_leave_normal_requests_answered_within_a_second() {
    const CAP: usize = 16;
    let mut app = spawn(ConnectionLimits {
        max_connections: CAP,
        header_read_timeout: Duration::from_secs(30),
        idle_timeout: Duration::from_secs(30),
    })
    .await;
    // Three times the cap of silent connections; the time-outs are far away.
    let mut idle = Vec::new();
    for _ in 0..3 * CAP {
        idle.push(TcpStream::connect(addr(&app)).await.unwrap());
    }
    for round in 0..10 {
        let (status, took) = timed_health(&app).await;
        assert_eq!(status, 200, "round {round}");
        assert!(took < Duration::from_secs(1), "round {round} took {took:?}");
    }
    // Room was made by closing idle connections: no more than the cap can still be open.
    let mut closed = 0;
    for stream in &mut idle {
        if closed_within(stream, Duration::from_millis(200)).await {
            closed += 1;
        }
    }
    assert!(
        closed >= 3 * CAP - CAP,
        "only {closed} of {} idle connections were closed",
        3 * CAP
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_and_slow_clients_are_closed_by_their_time_outs() {
    let mut app = spawn(ConnectionLimits {
        max_connections: 64,
        header_read_timeout: Duration::from_millis(400),
        idle_timeout: Duration::from_millis(600),
    })
    .await;
    let started = Instant::now();
    // Silent from the start.
    let mut silent = TcpStream::connect(addr(&app)).await.unwrap();
    // A keep-alive connection that asked once, then went quiet.
    let mut kept = TcpStream::connect(addr(&app)).await.unwrap();
    kept.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut answer = [0u8; 256];
    let n = kept.read(&mut answer).await.unwrap();
    assert!(answer[..n].starts_with(b"HTTP/1.1 200"));
    // Slowloris: headers begun, then one byte every 100 ms, never finished.
    let mut slow = TcpStream::connect(addr(&app)).await.unwrap();
    let dripping = tokio::spawn(async move {
        let _ = slow.write_all(b"GET /healthz HTTP/1.1\r\nX-A: ").await;
        for _ in 0..40 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            if slow.write_all(b"a").await.is_err() {
                return (true, Instant::now());
            }
        }
        (false, Instant::now())
    });
    // Closed at their time-outs (600 ms idle, 400 ms for headers), not at hyper's backstop
    // (2 s) nor never.
    assert!(closed_within(&mut silent, Duration::from_secs(3)).await);
    let silent_at = started.elapsed();
    assert!(closed_within(&mut kept, Duration::from_secs(3)).await);
    let (slow_closed, slow_at) = dripping.await.unwrap();
    assert!(slow_closed, "the slow client was never cut off");
    let slow_at = slow_at - started;
    for (who, at) in [("silent", silent_at), ("slow", slow_at)] {
        assert!(
            at < Duration::from_millis(1500),
            "{who} closed after {at:?}"
        );
    }
    assert!(
        silent_at >= Duration::from_millis(550),
        "silent closed after {silent_at:?}"
    );
    // The server still answers.
    assert_eq!(timed_health(&app).await.0, 200);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_request_ends_only_its_own_connection() {
    let mut app = spawn(ConnectionLimits::default()).await;
    let mut bad = TcpStream::connect(addr(&app)).await.unwrap();
    bad.write_all(b"GET /healthz HTTP/1.1\r\nContent-Length: x\r\n\r\n")
        .await
        .unwrap();
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(3), bad.read_to_end(&mut answer)).await;
    assert!(
        answer.starts_with(b"HTTP/1.1 400"),
        "{}",
        String::from_utf8_lossy(&answer)
    );
    assert_eq!(timed_health(&app).await.0, 200);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_is_not_held_up_by_silent_clients() {
    let mut app = spawn(ConnectionLimits::default()).await;
    let mut silent = TcpStream::connect(addr(&app)).await.unwrap();
    // A used keep-alive connection too.
    let client = reqwest::Client::new();
    let status = client
        .get(format!("{}/healthz", app.base))
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 200);
    let started = Instant::now();
    tokio::time::timeout(Duration::from_secs(5), app.stop())
        .await
        .expect("the app stops while a silent client is connected");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert!(closed_within(&mut silent, Duration::from_secs(1)).await);
}
