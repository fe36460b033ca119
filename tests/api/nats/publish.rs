//! Publishing: an approval walk's events arrive in the stream, each once, under the subject of
//! its type, with its event id as `Nats-Msg-Id`; an event handed over twice is stored once.

use std::sync::Arc;
use std::time::Duration;

use approvals::domain::model::{
    CallbackEvent, CallbackKind, EntityId, EntityType, EventName, InstanceId, InstanceStatus,
    OutboxItem, UserId,
};
use approvals::domain::ports::Callbacks;
use approvals::outbound::callbacks::Adapters;
use chrono::Utc;
use diesel::sql_types::{BigInt, Text};
use diesel_async::RunQueryDsl;

use super::{Reader, adapter, shared_server};
use crate::fixtures::PRICE_UPDATE;
use crate::helpers::{TestDb, eventually, load_pg_demo, serve_to, step_id};

#[derive(diesel::QueryableByName, Debug, Clone)]
pub struct OutboxRow {
    #[diesel(sql_type = Text)]
    pub event_id: String,
    #[diesel(sql_type = BigInt)]
    pub instance_id: i64,
    #[diesel(sql_type = BigInt)]
    pub sequence: i64,
    #[diesel(sql_type = diesel::sql_types::Integer)]
    pub attempts: i32,
    #[diesel(sql_type = diesel::sql_types::Bool)]
    pub delivered: bool,
}

/// Every outbox row of `db`, by id.
pub async fn outbox(db: &TestDb) -> Vec<OutboxRow> {
    let mut conn = db.connection().await;
    diesel::sql_query(
        "SELECT event_id, instance_id, sequence, attempts, delivered_at IS NOT NULL AS delivered \
         FROM workflow_callback_outbox ORDER BY id",
    )
    .load(&mut conn)
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_approval_walks_events_are_read_back_from_the_stream() {
    let Some((url, _server)) =
        shared_server("an_approval_walks_events_are_read_back_from_the_stream").await
    else {
        return;
    };
    let reader = Reader::connect(&url).await;
    let after = reader.last_sequence().await;
    let db = TestDb::create().await;
    let store = db.store().await;
    load_pg_demo(&store).await;
    // As `serve` plugs them: the log, and NATS.
    let adapters = Adapters::new().with_nats(adapter(&url).await);
    let mut app = serve_to(store, Some(db), Arc::new(adapters)).await;

    let instance = app.trigger(PRICE_UPDATE, "unit", 1, 1).await.body;
    let id = instance["id"].as_i64().unwrap();
    assert_eq!(app.approve(step_id(&instance, 1), 1).await.status, 200);
    let done = app.approve(step_id(&instance, 2), 2).await;
    assert_eq!(done.body["status"], "approved", "{}", done.body);

    let db = app.db.as_ref().unwrap();
    let delivered = eventually(Duration::from_secs(20), || async {
        outbox(db).await.iter().all(|row| row.delivered)
    })
    .await;
    let rows = outbox(db).await;
    assert!(delivered, "not every event was acknowledged: {rows:?}");
    // The demo's sample instance's event, then this walk's three.
    assert_eq!(rows.len(), 4, "{rows:?}");
    let ids: Vec<String> = rows.iter().map(|r| r.event_id.clone()).collect();
    let mut published = reader.messages_among(after, &ids).await;
    assert_eq!(published.len(), ids.len(), "{published:#?}");
    let mut seen: Vec<String> = published.iter().map(|m| m.msg_id.clone()).collect();
    seen.sort();
    let mut expected = ids.clone();
    expected.sort();
    assert_eq!(seen, expected, "each event once");
    for message in &published {
        assert_eq!(message.envelope["id"], message.msg_id.as_str());
        let kind = message.envelope["type"].as_str().unwrap();
        assert_eq!(message.subject, format!("approvals.{kind}"));
        let row = rows.iter().find(|r| r.event_id == message.msg_id).unwrap();
        assert_eq!(message.envelope["data"]["instance"]["id"], row.instance_id);
        assert_eq!(
            message.envelope["data"]["instance"]["sequence"],
            row.sequence
        );
    }

    published.retain(|m| m.envelope["data"]["instance"]["id"] == id);
    published.sort_by_key(|m| m.envelope["data"]["instance"]["sequence"].as_i64());
    let kinds: Vec<&str> = published
        .iter()
        .map(|m| m.envelope["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        [
            "step.awaiting_action",
            "step.awaiting_action",
            "instance.approved"
        ]
    );
    let walk_ids: Vec<&str> = rows
        .iter()
        .filter(|r| r.instance_id == id)
        .map(|r| r.event_id.as_str())
        .collect();
    let published_ids: Vec<&str> = published.iter().map(|m| m.msg_id.as_str()).collect();
    assert_eq!(published_ids, walk_ids, "in the order of their sequence");
    assert_eq!(published[2].envelope["data"]["actor_id"], 2);
    app.stop().await;
}

fn event(event_id: String) -> OutboxItem {
    OutboxItem {
        id: 1,
        attempts: 1,
        event_id,
        sequence: 1,
        event: CallbackEvent {
            kind: CallbackKind::OnRejected,
            instance_id: InstanceId::new(9).unwrap(),
            event: EventName::new(PRICE_UPDATE).unwrap(),
            entity_type: EntityType::new("unit").unwrap(),
            entity_id: EntityId::new(3).unwrap(),
            status: InstanceStatus::Rejected,
            step: None,
            decided_by: Some(UserId::new(2).unwrap()),
            comment: Some("Too low".to_owned()),
            at: Utc::now(),
        },
    }
}

fn unique_id(n: u32) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("evt_test_{}_{nanos}_{n}", std::process::id())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_handed_over_twice_is_stored_once() {
    let Some((url, _server)) = shared_server("an_event_handed_over_twice_is_stored_once").await
    else {
        return;
    };
    let reader = Reader::connect(&url).await;
    let nats = adapter(&url).await;
    let after = reader.last_sequence().await;
    let (twice, once) = (event(unique_id(1)), event(unique_id(2)));

    nats.deliver(&twice).await.unwrap();
    // A redelivery: as after a lost acknowledgement, or a failure of another adapter.
    nats.deliver(&twice).await.unwrap();
    nats.deliver(&once).await.unwrap();

    let ids = [twice.event_id.clone(), once.event_id.clone()];
    let published = reader.messages_among(after, &ids).await;
    let got: Vec<&str> = published.iter().map(|m| m.msg_id.as_str()).collect();
    assert_eq!(got, [ids[0].as_str(), ids[1].as_str()]);
    assert_eq!(published[0].subject, "approvals.instance.rejected");
    assert_eq!(published[0].envelope["data"]["comment"], "Too low");
}
