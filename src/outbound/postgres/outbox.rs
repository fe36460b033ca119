//! Outbound adapter, PostgreSQL: the callback outbox, and the JSON its rows hold.
//!
//! Events are written with the change that caused them (see `decisions`, and `instances` for a
//! trigger's, whose payload its SQL builds in this same shape) and claimed here by the
//! dispatcher, under a lease, until delivered. Every mark is fenced by the claim's lease.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Integer, Jsonb, Nullable, Text, Timestamptz};
use diesel_async::RunQueryDsl;
use serde::{Deserialize, Serialize};

use super::PgStore;
use super::schema::workflow_callback_outbox;
use crate::domain::WorkflowError;
use crate::domain::model::{
    CallbackEvent, CallbackKind, EntityId, EntityType, EventName, EventStep, FailedDelivery,
    InstanceId, InstanceStatus, Lease, OutboxItem, StepId, StoreLoad, UserId,
};

/// SKIP LOCKED: dispatchers in other processes claim other rows instead of waiting.
const CLAIM_CALLBACKS_SQL: &str = include_str!("sql/claim_callbacks.sql");
/// One statement for a round's deliveries, fenced per row.
const MARK_DELIVERED_SQL: &str = include_str!("sql/mark_callbacks_delivered.sql");
/// One statement for a round's failures, fenced per row.
const MARK_FAILED_SQL: &str = include_str!("sql/mark_callbacks_failed.sql");

/// The `payload` column: a callback event as JSON.
///
/// Its shape is a stored format: rows written by earlier versions must stay readable, so it
/// changes only in ways that can still read the old rows. Ids are plain numbers, names plain
/// strings, the kind its snake_case spelling and `at` chrono's RFC 3339. Rows from before the
/// approver notification have no `status` (their kind implies it) and no `step`.
#[derive(Debug, Serialize, Deserialize)]
struct CallbackPayload {
    kind: String,
    instance_id: i64,
    event: String,
    entity_type: String,
    entity_id: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    status: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    step: Option<StepPayload>,
    /// `null` when the engine itself caused the event (an overdue step).
    #[serde(default)]
    decided_by: Option<i64>,
    comment: Option<String>,
    at: DateTime<Utc>,
}

/// The `step` of a `step.*` event's payload.
#[derive(Debug, Serialize, Deserialize)]
struct StepPayload {
    id: i64,
    step_order: i32,
    name: String,
    eligible_user_ids: Vec<i64>,
}

impl From<&CallbackEvent> for CallbackPayload {
    fn from(event: &CallbackEvent) -> Self {
        Self {
            kind: event.kind.as_str().to_owned(),
            instance_id: event.instance_id.get(),
            event: event.event.as_str().to_owned(),
            entity_type: event.entity_type.as_str().to_owned(),
            entity_id: event.entity_id.get(),
            status: Some(event.status.as_str().to_owned()),
            step: event.step.as_ref().map(|step| StepPayload {
                id: step.id.get(),
                step_order: step.step_order,
                name: step.name.clone(),
                eligible_user_ids: step.eligible_user_ids.iter().map(|u| u.get()).collect(),
            }),
            decided_by: event.decided_by.map(UserId::get),
            comment: event.comment.clone(),
            at: event.at,
        }
    }
}

impl TryFrom<CallbackPayload> for CallbackEvent {
    type Error = WorkflowError;

    fn try_from(payload: CallbackPayload) -> Result<Self, WorkflowError> {
        let kind = CallbackKind::parse(&payload.kind).ok_or_else(|| {
            WorkflowError::validation("kind", format!("unknown kind '{}'", payload.kind))
        })?;
        let status = match payload.status {
            Some(status) => InstanceStatus::parse(&status).ok_or_else(|| {
                WorkflowError::validation("status", format!("unknown status '{status}'"))
            })?,
            // Written before events carried the status: only outcomes were stored then.
            None => match kind {
                CallbackKind::OnApproved => InstanceStatus::Approved,
                CallbackKind::OnRejected => InstanceStatus::Rejected,
                CallbackKind::OnCancelled => InstanceStatus::Cancelled,
                CallbackKind::StepAwaitingAction | CallbackKind::StepOverdue => {
                    InstanceStatus::InProgress
                }
            },
        };
        let step = match payload.step {
            Some(step) => Some(EventStep {
                id: StepId::new(step.id)?,
                step_order: step.step_order,
                name: step.name,
                eligible_user_ids: step
                    .eligible_user_ids
                    .into_iter()
                    .map(UserId::new)
                    .collect::<Result<_, _>>()?,
            }),
            None => None,
        };
        Ok(Self {
            kind,
            instance_id: InstanceId::new(payload.instance_id)?,
            event: EventName::new(payload.event)?,
            entity_type: EntityType::new(payload.entity_type)?,
            entity_id: EntityId::new(payload.entity_id)?,
            status,
            step,
            decided_by: payload.decided_by.map(UserId::new).transpose()?,
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
    #[diesel(sql_type = Text)]
    event_id: String,
    #[diesel(sql_type = BigInt)]
    sequence: i64,
}

pub(super) async fn claim_callbacks(
    store: &PgStore,
    now: DateTime<Utc>,
    lease_until: DateTime<Utc>,
    limit: u32,
    due_since: Option<DateTime<Utc>>,
) -> Result<Vec<OutboxItem>, WorkflowError> {
    store
        .with_conn(async |conn| {
            let rows: Vec<ClaimedRow> = diesel::sql_query(CLAIM_CALLBACKS_SQL)
                .bind::<Timestamptz, _>(now)
                .bind::<Timestamptz, _>(lease_until)
                .bind::<BigInt, _>(i64::from(limit))
                .bind::<Nullable<Timestamptz>, _>(due_since)
                .load(conn)
                .await?;
            let mut items = Vec::with_capacity(rows.len());
            for row in rows {
                match read_payload(row.payload) {
                    Ok(event) => items.push(OutboxItem {
                        id: row.id,
                        attempts: row.attempts,
                        event_id: row.event_id,
                        sequence: row.sequence,
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

pub(super) async fn mark_callbacks_delivered(
    store: &PgStore,
    leases: Vec<Lease>,
    now: DateTime<Utc>,
) -> Result<u64, WorkflowError> {
    let ids: Vec<i64> = leases.iter().map(|l| l.id).collect();
    let attempts: Vec<i32> = leases.iter().map(|l| l.attempts).collect();
    store
        .with_conn(async |conn| {
            let marked = diesel::sql_query(MARK_DELIVERED_SQL)
                .bind::<Array<BigInt>, _>(&ids)
                .bind::<Array<Integer>, _>(&attempts)
                .bind::<Timestamptz, _>(now)
                .execute(conn)
                .await?;
            Ok(marked as u64)
        })
        .await
}

pub(super) async fn mark_callbacks_failed(
    store: &PgStore,
    failures: Vec<FailedDelivery>,
    now: DateTime<Utc>,
) -> Result<u64, WorkflowError> {
    let ids: Vec<i64> = failures.iter().map(|f| f.lease.id).collect();
    let attempts: Vec<i32> = failures.iter().map(|f| f.lease.attempts).collect();
    let errors: Vec<&str> = failures.iter().map(|f| f.error.as_str()).collect();
    let retry_at: Vec<DateTime<Utc>> = failures.iter().map(|f| f.retry_at).collect();
    store
        .with_conn(async |conn| {
            let marked = diesel::sql_query(MARK_FAILED_SQL)
                .bind::<Array<BigInt>, _>(&ids)
                .bind::<Array<Integer>, _>(&attempts)
                .bind::<Array<Text>, _>(&errors)
                .bind::<Array<Timestamptz>, _>(&retry_at)
                .bind::<Timestamptz, _>(now)
                .execute(conn)
                .await?;
            Ok(marked as u64)
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

/// Test support: the claim's generic plan, for a claim bounded by a `due_since` or not, one
/// line per element (see [`generic_plan`](super::statement::generic_plan)).
#[cfg(any(test, feature = "test-support"))]
impl PgStore {
    pub async fn explain_claim_callbacks(
        &self,
        bounded: bool,
    ) -> Result<Vec<String>, WorkflowError> {
        let since = if bounded {
            "now() - interval '5 seconds'"
        } else {
            "NULL"
        };
        super::statement::generic_plan(
            self,
            "claim_callbacks_plan",
            "timestamptz, timestamptz, int8, timestamptz",
            CLAIM_CALLBACKS_SQL,
            &format!("now(), now() + interval '1 minute', 100, {since}"),
        )
        .await
    }
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
            status: InstanceStatus::Rejected,
            step: None,
            decided_by: Some(UserId::new(3).unwrap()),
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
        let mut with_status = stored_json();
        with_status["status"] = json!("rejected");
        assert_eq!(payload(&event()).unwrap(), with_status);
    }

    #[test]
    fn step_events_round_trip() {
        let awaiting = CallbackEvent {
            kind: CallbackKind::StepAwaitingAction,
            status: InstanceStatus::InProgress,
            step: Some(EventStep {
                id: StepId::new(12).unwrap(),
                step_order: 2,
                name: "Finance".to_owned(),
                eligible_user_ids: vec![UserId::new(2).unwrap(), UserId::new(5).unwrap()],
            }),
            comment: None,
            ..event()
        };
        let stored = payload(&awaiting).unwrap();
        assert_eq!(
            stored["step"],
            json!({"id": 12, "step_order": 2, "name": "Finance", "eligible_user_ids": [2, 5]})
        );
        assert_eq!(stored["kind"], json!("step_awaiting_action"));
        assert_eq!(read_payload(stored), Ok(awaiting));
    }

    #[test]
    fn stored_rows_read_back() {
        assert_eq!(read_payload(stored_json()), Ok(event()));
        let mut approved = stored_json();
        approved["kind"] = json!("on_approved");
        approved["comment"] = json!(null);
        let read = read_payload(approved).unwrap();
        assert_eq!(read.kind, CallbackKind::OnApproved);
        assert_eq!(
            read.status,
            InstanceStatus::Approved,
            "implied by an old row's kind"
        );
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
