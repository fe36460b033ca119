//! Deliveries from the in-process app to a real receiver: signed, retried, timed out, dead
//! and sent again on request.

use std::time::Duration;

use serde_json::Value;
use tokio::net::TcpListener;

use super::{Answer, Receiver, deliveries, demo_event_handed_on, subscribe};
use crate::fixtures::CANCELLATION;
use crate::helpers::{TestApp, eventually, spawn_memory, spawn_pg};

/// Waits until the subscription's only delivery has `status`, and returns it.
async fn settled(app: &TestApp, subscription: &Value, status: &str) -> Value {
    let reached = eventually(Duration::from_secs(15), || async {
        let all = deliveries(app, subscription, None).await;
        all.len() == 1 && all[0]["status"] == status
    })
    .await;
    let mut last = deliveries(app, subscription, None).await;
    assert!(reached, "no single {status} delivery: {last:?}");
    last.remove(0)
}

async fn signed_deliveries_verify_and_carry_the_event(app: TestApp) {
    let receiver = Receiver::start().await;
    demo_event_handed_on(&[&app]).await;
    let subscription = subscribe(&app, &receiver.url()).await;
    let secret = subscription["secret"].as_str().unwrap();
    assert!(secret.starts_with("whsec_"), "{subscription}");
    receiver.set_secret(secret);
    // Listed without its secret.
    let listed = app.get("subscriptions").await;
    assert_eq!(listed.body["items"][0]["id"], subscription["id"]);
    assert!(
        listed.body["items"][0].get("secret").is_none(),
        "{}",
        listed.body
    );

    let started = app.trigger(CANCELLATION, "booking", 2, 3).await;
    assert_eq!(started.status, 201, "{}", started.body);
    assert!(receiver.wait_for(1, Duration::from_secs(10)).await);
    let got = &receiver.received()[0];
    assert!(
        got.verified,
        "the signature verifies with the subscription's secret"
    );
    assert_eq!(got.body["type"], "step.awaiting_action");
    assert_eq!(
        got.id,
        got.body["id"].as_str().unwrap(),
        "webhook-id is the event id"
    );
    assert_eq!(got.body["data"]["instance"]["id"], started.body["id"]);
    assert_eq!(got.body["data"]["instance"]["sequence"], 1);
    let now = chrono::Utc::now().timestamp();
    assert!(
        (now - got.timestamp).abs() < 60,
        "{} vs {now}",
        got.timestamp
    );

    let delivery = settled(&app, &subscription, "delivered").await;
    assert_eq!(delivery["attempts"], 1);
    assert_eq!(delivery["event_id"], got.body["id"]);
    assert_eq!(delivery["event_type"], "step.awaiting_action");
    assert_eq!(delivery["last_status_code"], 200);
    assert!(delivery["delivered_at"].is_string(), "{delivery}");
    assert!(delivery["next_attempt_at"].is_null(), "{delivery}");
    let metrics = app
        .client
        .get(format!("{}/metrics", app.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics
            .lines()
            .any(|l| l == r#"approvals_webhook_deliveries{status="delivered"} 1"#),
        "{metrics}"
    );
    assert!(
        metrics
            .lines()
            .any(|l| l == r#"approvals_webhook_deliveries{status="dead"} 0"#),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn memory_signed_deliveries_verify_and_carry_the_event() {
    signed_deliveries_verify_and_carry_the_event(spawn_memory().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_signed_deliveries_verify_and_carry_the_event() {
    signed_deliveries_verify_and_carry_the_event(spawn_pg().await).await;
}

/// 500 twice, then 200: three attempts, one success, the same webhook-id each time.
async fn a_receiver_failing_twice_gets_three_attempts(app: TestApp) {
    let receiver = Receiver::start().await;
    receiver.script(&[Answer::Status(500), Answer::Status(500)]);
    demo_event_handed_on(&[&app]).await;
    let subscription = subscribe(&app, &receiver.url()).await;
    receiver.set_secret(subscription["secret"].as_str().unwrap());
    assert_eq!(app.trigger(CANCELLATION, "booking", 2, 3).await.status, 201);
    let delivery = settled(&app, &subscription, "delivered").await;
    assert_eq!(delivery["attempts"], 3, "{delivery}");
    let got = receiver.received();
    assert_eq!(got.len(), 3, "{got:?}");
    assert!(
        got.iter().all(|r| r.id == got[0].id && r.verified),
        "{got:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn memory_a_receiver_failing_twice_gets_three_attempts() {
    a_receiver_failing_twice_gets_three_attempts(spawn_memory().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_a_receiver_failing_twice_gets_three_attempts() {
    a_receiver_failing_twice_gets_three_attempts(spawn_pg().await).await;
}

/// A receiver that answers only after the time-out (2 s in the tests): that try failed, and the
/// next one succeeds.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_receiver_that_hangs_past_the_time_out_fails_and_is_retried() {
    let app = spawn_memory().await;
    let receiver = Receiver::start().await;
    receiver.script(&[Answer::Hang(Duration::from_secs(4))]);
    demo_event_handed_on(&[&app]).await;
    let subscription = subscribe(&app, &receiver.url()).await;
    assert_eq!(app.trigger(CANCELLATION, "booking", 2, 3).await.status, 201);
    // While the first try hangs, the delivery is not delivered.
    assert!(receiver.wait_for(1, Duration::from_secs(10)).await);
    let delivery = settled(&app, &subscription, "delivered").await;
    assert_eq!(delivery["attempts"], 2, "{delivery}");
    assert_eq!(receiver.received().len(), 2);
}

/// A receiver that is down: every try fails (1 + 3 retries in the tests), the delivery is dead
/// with the error kept; the retry endpoint sends it again once the receiver is back.
async fn a_dead_delivery_is_sent_again_on_request(app: TestApp) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    demo_event_handed_on(&[&app]).await;
    let subscription = subscribe(&app, &format!("http://{addr}/hooks")).await;
    assert_eq!(app.trigger(CANCELLATION, "booking", 2, 3).await.status, 201);
    let dead = settled(&app, &subscription, "dead").await;
    assert_eq!(dead["attempts"], 4, "{dead}");
    assert!(
        dead["last_error"].as_str().is_some_and(|e| !e.is_empty()),
        "{dead}"
    );
    assert!(dead["last_status_code"].is_null(), "{dead}");
    assert_eq!(deliveries(&app, &subscription, Some("dead")).await.len(), 1);
    assert!(
        deliveries(&app, &subscription, Some("pending"))
            .await
            .is_empty()
    );

    let receiver = Receiver::on(TcpListener::bind(addr).await.unwrap());
    receiver.set_secret(subscription["secret"].as_str().unwrap());
    let retried = app
        .post(&format!("deliveries/{}/retry", dead["id"]), Value::Null)
        .await;
    assert_eq!(retried.status, 200, "{}", retried.body);
    let delivered = settled(&app, &subscription, "delivered").await;
    assert_eq!(delivered["attempts"], 5, "{delivered}");
    let got = receiver.received();
    assert_eq!(got.len(), 1);
    assert!(got[0].verified);
    assert_eq!(got[0].id, dead["event_id"].as_str().unwrap());
    // Delivered: a retry is refused.
    let again = app
        .post(&format!("deliveries/{}/retry", dead["id"]), Value::Null)
        .await;
    assert_eq!(
        (again.status, again.code()),
        (409, "delivery_not_retryable")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn memory_a_dead_delivery_is_sent_again_on_request() {
    a_dead_delivery_is_sent_again_on_request(spawn_memory().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_a_dead_delivery_is_sent_again_on_request() {
    a_dead_delivery_is_sent_again_on_request(spawn_pg().await).await;
}
