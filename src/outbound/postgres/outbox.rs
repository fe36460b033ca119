//! Outbound adapter, PostgreSQL: the callback outbox, and the JSON its rows hold.
//!
//! Outcome notifications are written with the decision that caused them (see `decisions`) and
//! claimed here by the dispatcher, under a lease, until delivered.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Integer, Jsonb, Timestamptz};
use diesel_async::RunQueryDsl;
use serde::{Deserialize, Serialize};

use super::PgStore;
use super::schema::workflow_callback_outbox;
use crate::domain::WorkflowError;
use crate::domain::model::{
    CallbackEvent, CallbackKind, EntityId, EntityType, EventName, InstanceId, OutboxItem,
    StoreLoad, UserId,
};

/// SKIP LOCKED: dispatchers in other processes claim other rows instead of waiting.
const CLAIM_CALLBACKS_SQL: &str = include_str!("sql/claim_callbacks.sql");

/// The `payload` column: a callback event as JSON.
///
/// Its shape is a stored format: rows written by earlier versions must stay readable, so it
/// changes only in ways that can still read the old rows. Ids are plain numbers, names plain
/// strings, the kind its snake_case spelling and `at` chrono's RFC 3339.
#[derive(Debug, Serialize, Deserialize)]
struct CallbackPayload {
    kind: String,
    instance_id: i64,
    event: String,
    entity_type: String,
    entity_id: i64,
    decided_by: i64,
    comment: Option<String>,
    at: DateTime<Utc>,
}

impl From<&CallbackEvent> for CallbackPayload {
    fn from(event: &CallbackEvent) -> Self {
        Self {
            kind: event.kind.as_str().to_owned(),
            instance_id: event.instance_id.get(),
            event: event.event.as_str().to_owned(),
            entity_type: event.entity_type.as_str().to_owned(),
            entity_id: event.entity_id.get(),
            decided_by: event.decided_by.get(),
            comment: event.comment.clone(),
            at: event.at,
        }
    }
}

impl TryFrom<CallbackPayload> for CallbackEvent {
    type Error = WorkflowError;

    fn try_from(payload: CallbackPayload) -> Result<Self, WorkflowError> {
        Ok(Self {
            kind: CallbackKind::parse(&payload.kind).ok_or_else(|| {
                WorkflowError::validation("kind", format!("unknown kind '{}'", payload.kind))
            })?,
            instance_id: InstanceId::new(payload.instance_id)?,
            event: EventName::new(payload.event)?,
            entity_type: EntityType::new(payload.entity_type)?,
            entity_id: EntityId::new(payload.entity_id)?,
            decided_by: UserId::new(payload.decided_by)?,
            comment: payload.comment,
            at: payload.at,
        })
    }
}

/// The `payload` column's value for `event`.
pub(super) fn payload(event: &CallbackEvent) -> Result<serde_json::Value, WorkflowError> {
    serde_json::to_value(CallbackPayload::from(event))
        .map_err(|e| WorkflowError::internal_from("callback event not serialisable", e))
}

/// Reads a `payload` column; the error is the reason the row can't be delivered.
fn read_payload(value: serde_json::Value) -> Result<CallbackEvent, String> {
    let payload: CallbackPayload = serde_json::from_value(value).map_err(|e| e.to_string())?;
    CallbackEvent::try_from(payload).map_err(|e| e.to_string())
}

#[derive(QueryableByName)]
struct ClaimedRow {
    #[diesel(sql_type = BigInt)]
    id: i64,
    #[diesel(sql_type = Integer)]
    attempts: i32,
    #[diesel(sql_type = Jsonb)]
    payload: serde_json::Value,
}

pub(super) async fn claim_callbacks(
    store: &PgStore,
    now: DateTime<Utc>,
    lease_until: DateTime<Utc>,
    limit: u32,
) -> Result<Vec<OutboxItem>, WorkflowError> {
    store
        .with_conn(async |conn| {
            let rows: Vec<ClaimedRow> = diesel::sql_query(CLAIM_CALLBACKS_SQL)
                .bind::<Timestamptz, _>(now)
                .bind::<Timestamptz, _>(lease_until)
                .bind::<BigInt, _>(i64::from(limit))
                .load(conn)
                .await?;
            let mut items = Vec::with_capacity(rows.len());
            for row in rows {
                match read_payload(row.payload) {
                    Ok(event) => items.push(OutboxItem {
                        id: row.id,
                        attempts: row.attempts,
                        event,
                    }),
                    Err(e) => {
                        // One unreadable row (say, written by another version) must not hold up
                        // the others: park it for a day, with the reason, for an operator.
                        let reason = format!("unreadable payload: {e}");
                        tracing::error!(outbox_id = row.id, %reason, "callback event parked");
                        diesel::update(workflow_callback_outbox::table.find(row.id))
                            .set((
                                workflow_callback_outbox::due_at
                                    .eq(now + chrono::Duration::days(1)),
                                workflow_callback_outbox::last_error.eq(Some(reason)),
                            ))
                            .execute(conn)
                            .await?;
                    }
                }
            }
            Ok(items)
        })
        .await
}

pub(super) async fn mark_callback_delivered(
    store: &PgStore,
    id: i64,
    at: DateTime<Utc>,
) -> Result<(), WorkflowError> {
    store
        .with_conn(async |conn| {
            diesel::update(workflow_callback_outbox::table.find(id))
                .set((
                    workflow_callback_outbox::delivered_at.eq(Some(at)),
                    workflow_callback_outbox::last_error.eq(None::<String>),
                ))
                .execute(conn)
                .await?;
            Ok(())
        })
        .await
}

pub(super) async fn mark_callback_failed(
    store: &PgStore,
    id: i64,
    error: String,
    retry_at: DateTime<Utc>,
) -> Result<(), WorkflowError> {
    store
        .with_conn(async |conn| {
            diesel::update(workflow_callback_outbox::table.find(id))
                .set((
                    workflow_callback_outbox::due_at.eq(retry_at),
                    workflow_callback_outbox::last_error.eq(Some(error.as_str())),
                ))
                .execute(conn)
                .await?;
            Ok(())
        })
        .await
}

/// The outbox backlog and the pool's use.
pub(super) async fn load(store: &PgStore) -> Result<StoreLoad, WorkflowError> {
    let (backlog, oldest): (i64, Option<DateTime<Utc>>) = store
        .with_conn(async |conn| {
            Ok(workflow_callback_outbox::table
                .filter(workflow_callback_outbox::delivered_at.is_null())
                .select((
                    diesel::dsl::count_star(),
                    diesel::dsl::min(workflow_callback_outbox::created_at),
                ))
                .first(conn)
                .await?)
        })
        .await?;
    Ok(StoreLoad {
        outbox_backlog: u64::try_from(backlog).unwrap_or_default(),
        oldest_undelivered_at: oldest,
        pool: Some(store.pool_use()),
    })
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use serde_json::json;

    use super::*;

    fn event() -> CallbackEvent {
        CallbackEvent {
            kind: CallbackKind::OnRejected,
            instance_id: InstanceId::new(7).unwrap(),
            event: EventName::new("booking.cancellation_requested").unwrap(),
            entity_type: EntityType::new("booking").unwrap(),
            entity_id: EntityId::new(42).unwrap(),
            decided_by: UserId::new(3).unwrap(),
            comment: Some("not this quarter".to_owned()),
            at: Utc.with_ymd_and_hms(2026, 11, 26, 9, 30, 0).unwrap()
                + chrono::Duration::microseconds(123_456),
        }
    }

    /// The JSON the domain's serde derives wrote before the adapter had its own row type.
    fn stored_json() -> serde_json::Value {
        json!({
            "kind": "on_rejected",
            "instance_id": 7,
            "event": "booking.cancellation_requested",
            "entity_type": "booking",
            "entity_id": 42,
            "decided_by": 3,
            "comment": "not this quarter",
            "at": "2026-11-26T09:30:00.123456Z",
        })
    }

    #[test]
    fn payload_keeps_the_stored_shape() {
        assert_eq!(payload(&event()).unwrap(), stored_json());
    }

    #[test]
    fn stored_rows_read_back() {
        assert_eq!(read_payload(stored_json()), Ok(event()));
        let mut approved = stored_json();
        approved["kind"] = json!("on_approved");
        approved["comment"] = json!(null);
        let read = read_payload(approved).unwrap();
        assert_eq!(read.kind, CallbackKind::OnApproved);
        assert_eq!(read.comment, None);
    }

    #[test]
    fn unreadable_rows_say_why() {
        let mut bad_kind = stored_json();
        bad_kind["kind"] = json!("on_maybe");
        assert!(read_payload(bad_kind).unwrap_err().contains("on_maybe"));
        let mut bad_id = stored_json();
        bad_id["instance_id"] = json!(0);
        assert!(read_payload(bad_id).unwrap_err().contains("instance_id"));
        assert!(read_payload(json!({"kind": "on_approved"})).is_err());
    }
}
