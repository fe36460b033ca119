//! PostgreSQL across process and server trouble: data survives a restart, and a database that
//! can't be reached is answered 503 quickly instead of hanging.

use std::sync::Arc;
use std::time::Duration;

use approvals::outbound::postgres::{PgConfig, PgStore};

use crate::helpers::{serve, spawn_pg, step_id};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_survives_a_restart() {
    let mut first = spawn_pg().await;
    let instance = first
        .trigger("booking.cancellation_requested", "booking", 2, 3)
        .await
        .body;
    first.approve(step_id(&instance, 1), 1).await;
    let id = instance["id"].as_i64().unwrap();
    let before = first.get(&format!("instances/{id}")).await.body;
    first.stop().await;
    let db = first.db.take().unwrap();
    let mut second = serve(db.store().await, Some(db)).await;
    assert_eq!(second.get(&format!("instances/{id}")).await.body, before);
    second.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_database_is_503_not_a_hang() {
    // Nothing listens on port 1.
    let config = PgConfig {
        connect_timeout: Duration::from_secs(1),
        ..PgConfig::default()
    };
    let store = Arc::new(
        PgStore::connect("postgres://postgres@127.0.0.1:1/none", &config)
            .await
            .unwrap(),
    );
    let mut app = serve(store, None).await;
    let started = std::time::Instant::now();
    let health = app.get("/healthz").await;
    assert_eq!((health.status, health.code()), (503, "unavailable"));
    let read = app.get("instances/1").await;
    assert_eq!((read.status, read.code()), (503, "unavailable"));
    let write = app
        .trigger("booking.cancellation_requested", "booking", 1, 3)
        .await;
    assert_eq!((write.status, write.code()), (503, "unavailable"));
    assert!(
        !write.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("127.0.0.1")
    );
    assert!(started.elapsed() < Duration::from_secs(15));
    app.stop().await;
}
