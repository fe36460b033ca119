//! A NATS outage: while the server is down decisions still commit, their events wait in the
//! outbox (tried again and again) and `/readyz` says NATS is unavailable; once it is back every
//! event arrives exactly once and the service is ready again.

use std::sync::Arc;
use std::time::Duration;

use approvals::outbound::callbacks::Adapters;
use serde_json::json;

use super::publish::outbox;
use super::{NatsServer, Reader, adapter};
use crate::fixtures::PRICE_UPDATE;
use crate::helpers::{TestDb, eventually, load_pg_demo, serve_to, step_id};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_wait_out_an_outage_and_arrive_once() {
    let Some(mut server) = NatsServer::start("events_wait_out_an_outage_and_arrive_once").await
    else {
        return;
    };
    let url = server.url();
    let db = TestDb::create().await;
    let store = db.store().await;
    load_pg_demo(&store).await;
    let adapters = Adapters::new().with_nats(adapter(&url).await);
    let mut app = serve_to(store, Some(db), Arc::new(adapters)).await;
    let db = app.db.as_ref().unwrap();
    let first = eventually(Duration::from_secs(20), || async {
        outbox(db).await.iter().all(|row| row.delivered)
    })
    .await;
    assert!(first, "the demo's event was not published");
    let ready = app.get("/readyz").await;
    assert_eq!(
        (ready.status, ready.body),
        (
            200,
            json!({"status": "ready", "checks": {"database": "ok", "nats": "ok"}})
        )
    );

    server.stop();
    let down = eventually(Duration::from_secs(10), || async {
        app.get("/readyz").await.status == 503
    })
    .await;
    assert!(down, "/readyz did not notice NATS going away");
    let not_ready = app.get("/readyz").await;
    assert_eq!(not_ready.code(), "unavailable");
    assert!(
        not_ready.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("nats: unavailable"),
        "{}",
        not_ready.body
    );
    let instance = app.trigger(PRICE_UPDATE, "unit", 2, 1).await.body;
    let id = instance["id"].as_i64().unwrap();
    assert_eq!(app.approve(step_id(&instance, 1), 1).await.status, 200);
    let done = app.approve(step_id(&instance, 2), 2).await;
    assert_eq!(done.body["status"], "approved", "{}", done.body);

    // Each of the walk's three events has been tried and failed more than once.
    let retried = eventually(Duration::from_secs(20), || async {
        let walk: Vec<_> = outbox(db)
            .await
            .into_iter()
            .filter(|row| row.instance_id == id)
            .collect();
        walk.len() == 3 && walk.iter().all(|row| !row.delivered && row.attempts > 1)
    })
    .await;
    let rows = outbox(db).await;
    assert!(retried, "events were not kept and retried: {rows:?}");

    server.resume().await;
    let delivered = eventually(Duration::from_secs(30), || async {
        outbox(db).await.iter().all(|row| row.delivered)
    })
    .await;
    let rows = outbox(db).await;
    assert!(
        delivered,
        "events were not published after the outage: {rows:?}"
    );
    let ready = app.get("/readyz").await;
    assert_eq!(ready.status, 200, "{}", ready.body);

    let reader = Reader::connect(&url).await;
    let published = reader.messages_after(0).await;
    let mut got: Vec<String> = published.iter().map(|m| m.msg_id.clone()).collect();
    got.sort();
    let mut expected: Vec<String> = rows.iter().map(|r| r.event_id.clone()).collect();
    expected.sort();
    assert_eq!(got, expected, "every event exactly once: {published:#?}");
    app.stop().await;
}
