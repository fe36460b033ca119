//! Webhooks across processes on one PostgreSQL database: two dispatching processes never send
//! one delivery at once, and a server killed after the receiver got a delivery but before it
//! was marked sends it again, with the same webhook-id, once its lease has run out.

use std::process::Stdio;
use std::time::Duration;

use tokio::process::{Child, Command};

use super::{Answer, Receiver, deliveries, demo_event_handed_on, subscribe};
use crate::fixtures::CANCELLATION;
use crate::helpers::{TestDb, eventually, load_pg_demo, serve};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_dispatching_processes_never_send_one_delivery_at_once() {
    let db = TestDb::create().await;
    let first_store = db.store().await;
    load_pg_demo(&first_store).await;
    let first = serve(first_store, None).await;
    let second = serve(db.store().await, None).await;
    let receiver = Receiver::start().await;
    // Slow answers keep each try in flight long enough for the other process to look.
    receiver.script(&[Answer::Hang(Duration::from_millis(300)); 12]);
    demo_event_handed_on(&[&first, &second]).await;
    let subscription = subscribe(&first, &receiver.url()).await;
    receiver.set_secret(subscription["secret"].as_str().unwrap());
    // Ten instances, triggered through both processes: ten step.awaiting_action events.
    for entity in 1..=10 {
        let app = if entity % 2 == 0 { &first } else { &second };
        let reply = app.trigger(CANCELLATION, "booking", 100 + entity, 3).await;
        assert_eq!(reply.status, 201, "{}", reply.body);
    }
    let all_delivered = eventually(Duration::from_secs(30), || async {
        let all = deliveries(&first, &subscription, None).await;
        all.len() == 10 && all.iter().all(|d| d["status"] == "delivered")
    })
    .await;
    assert!(
        all_delivered,
        "{:?}",
        deliveries(&first, &subscription, None).await
    );
    let got = receiver.received();
    assert!(
        got.iter().all(|r| r.concurrent == 0),
        "sent twice at once: {got:?}"
    );
    let mut ids: Vec<&str> = got.iter().map(|r| r.id.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 10);
    assert_eq!(got.len(), 10, "each delivered once: {got:?}");
    drop(db);
}

/// The server binary on `db`, with webhooks allowed to reach 127.0.0.1 and a 2 s time-out (so
/// a 7 s lease).
fn server(db: &TestDb, port: u16) -> Child {
    Command::new(env!("CARGO_BIN_EXE_approvals"))
        .arg("serve")
        .env("DATABASE_URL", &db.url)
        .env("BIND_ADDR", format!("127.0.0.1:{port}"))
        .env("RUST_LOG", "error")
        .env("WEBHOOK_ALLOW_PRIVATE_NETWORKS", "true")
        .env("WEBHOOK_TIMEOUT", "2s")
        .env("WEBHOOK_RETRY_SCHEDULE", "100ms,100ms,100ms")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("the server binary starts")
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn until_up(client: &reqwest::Client, base: &str) {
    let up = eventually(Duration::from_secs(20), || async {
        client
            .get(format!("{base}/healthz"))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
    })
    .await;
    assert!(up, "the server answers /healthz");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_delivery_unmarked_when_the_server_died_is_sent_again_with_its_id() {
    let db = TestDb::create().await;
    load_pg_demo(&db.store().await).await;
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let mut first = server(&db, port);
    until_up(&client, &base).await;
    let receiver = Receiver::start().await;
    // The first try is held until the server is gone: it is never marked.
    receiver.script(&[Answer::Hang(Duration::from_secs(1))]);
    let created = client
        .post(format!("{base}/api/v1/workflow/subscriptions"))
        // Only cancellations: the one event of this test (the demo's own may still be in flight).
        .json(&serde_json::json!({"url": receiver.url(), "event_types": ["instance.cancelled"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let subscription: serde_json::Value = created.json().await.unwrap();
    receiver.set_secret(subscription["secret"].as_str().unwrap());
    let triggered = client
        .post(format!("{base}/api/v1/workflow/instances"))
        .json(&serde_json::json!({"event": CANCELLATION, "entity_type": "booking", "entity_id": 2, "initiated_by": 3}))
        .send()
        .await
        .unwrap();
    assert_eq!(triggered.status(), 201);
    let instance: serde_json::Value = triggered.json().await.unwrap();
    let cancelled = client
        .post(format!(
            "{base}/api/v1/workflow/instances/{}/cancel",
            instance["id"]
        ))
        .json(&serde_json::json!({"acted_by_user_id": 3}))
        .send()
        .await
        .unwrap();
    assert_eq!(cancelled.status(), 200);
    assert!(receiver.wait_for(1, Duration::from_secs(10)).await);
    first.kill().await.unwrap();
    let _ = first.wait().await;

    let _second = server(&db, port);
    until_up(&client, &base).await;
    // Sent again once the dead process's lease (7 s) has run out.
    assert!(
        receiver.wait_for(2, Duration::from_secs(20)).await,
        "not sent again"
    );
    let got = receiver.received();
    assert_eq!(got[0].id, got[1].id, "the same webhook-id: {got:?}");
    assert!(got.iter().all(|r| r.verified));
    assert_eq!(got[0].body["type"], "instance.cancelled");
    let delivered = eventually(Duration::from_secs(10), || async {
        let reply: serde_json::Value = client
            .get(format!(
                "{base}/api/v1/workflow/subscriptions/{}/deliveries?status=delivered",
                subscription["id"]
            ))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        reply["items"]
            .as_array()
            .is_some_and(|items| items.len() == 1)
    })
    .await;
    assert!(delivered);
    drop(db);
}
