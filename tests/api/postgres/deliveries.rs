//! PostgreSQL webhook deliveries: a delivery keeps its body only while it may be sent again.

use approvals::domain::model::Done;
use approvals::domain::ports::WorkflowRepository;
use approvals::domain::webhooks::model::{
    EventTypes, FirstTry, MarkOutcome, NewSubscription, Subscription, WebhookSecret, WebhookUrl,
};
use approvals::domain::webhooks::ports::WebhookStore;
use chrono::{TimeDelta, Utc};

use super::count;
use crate::helpers::{TestDb, load_pg_demo};

const BODIES_KEPT: &str = "SELECT count(*) AS n FROM webhook_deliveries WHERE body IS NOT NULL";

async fn subscribe(store: &impl WebhookStore, host: &str) -> Subscription {
    store
        .create_subscription(
            NewSubscription {
                url: WebhookUrl::parse(&format!("https://{host}/in")).unwrap(),
                event_types: EventTypes::parse(["step.awaiting_action"]).unwrap(),
                secret: WebhookSecret::generate().unwrap(),
                created_at: Utc::now(),
            },
            None,
        )
        .await
        .and_then(Done::unkeyed)
        .unwrap()
}

/// Delivered on its first try: no body kept. Failed: kept, sent again on its retry, and
/// dropped once that retry is delivered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delivery_keeps_its_body_only_while_it_may_be_sent_again() {
    let db = TestDb::create().await;
    let store = db.store().await;
    load_pg_demo(&store).await;
    let (delivered_to, failing) = (
        subscribe(&*store, "a.example.com").await,
        subscribe(&*store, "b.example.com").await,
    );
    let now = Utc::now();
    let held = store
        .claim_callbacks(now, now + TimeDelta::seconds(60), 10)
        .await
        .unwrap();
    let event = held.first().expect("the demo's instance has an event");
    let first_try = |to: &Subscription, outcome| FirstTry {
        subscription_id: to.id,
        event_id: event.event_id.clone(),
        kind: event.event.kind,
        body: "{\"id\":\"evt\"}".to_owned(),
        outbox: event.lease(),
        outcome,
    };
    let retry_at = now + TimeDelta::seconds(1);
    let tries = vec![
        first_try(&delivered_to, MarkOutcome::Delivered { status: 204 }),
        first_try(
            &failing,
            MarkOutcome::Failed {
                status: Some(503),
                error: "busy".to_owned(),
                retry_at: Some(retry_at),
            },
        ),
    ];
    assert_eq!(store.record_first_tries(tries, now).await.unwrap(), 2);
    let mut conn = db.connection().await;
    assert_eq!(
        count(&mut conn, BODIES_KEPT).await,
        1,
        "only the failed one's"
    );

    let retry = store
        .claim_deliveries(retry_at, retry_at + TimeDelta::seconds(60), 10)
        .await
        .unwrap();
    assert_eq!(retry.len(), 1);
    assert_eq!(retry[0].message.body, "{\"id\":\"evt\"}");
    let marks = vec![approvals::domain::webhooks::model::DeliveryMark {
        lease: retry[0].lease,
        outcome: MarkOutcome::Delivered { status: 200 },
    }];
    assert_eq!(store.mark_deliveries(marks, retry_at).await.unwrap(), 1);
    assert_eq!(count(&mut conn, BODIES_KEPT).await, 0);
    drop(db);
}
