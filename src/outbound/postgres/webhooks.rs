//! Outbound adapter, PostgreSQL: webhook subscriptions and deliveries (the `WebhookStore`
//! port). Deliveries are claimed with `FOR UPDATE SKIP LOCKED` under a lease, like the outbox,
//! and every mark is fenced by the claim's lease.

use chrono::{DateTime, Utc};
use diesel::QueryableByName;
use diesel::sql_types::{Array, BigInt, Integer, Nullable, Text, Timestamptz};
use diesel_async::{AsyncConnection, RunQueryDsl};

use super::errors::TxError;
use super::idempotency::once_before_commit;
use super::{PgStore, detached};
use crate::domain::WorkflowError;
use crate::domain::model::{CallbackKind, Done, Lease, Once};
use crate::domain::webhooks::model::{
    ClaimedDelivery, Delivery, DeliveryCounts, DeliveryId, DeliveryMark, DeliveryStatus,
    EventTypes, FanOutEvent, MarkOutcome, NewSubscription, Subscription, SubscriptionId,
    WebhookSecret, WebhookUrl,
};
use crate::domain::webhooks::ports::WebhookStore;

const SUBSCRIPTION_COLUMNS: &str = "id, url, event_types, secret, created_at";
const DELIVERY_COLUMNS: &str = "id, subscription_id, event_id, event_type, status, attempts, \
     last_error, last_status_code, next_attempt_at, delivered_at, created_at";

/// One statement: a delivery for every subscription asking for the event's type, none twice,
/// each claimed for its first try by the fan-out's own dispatcher (one attempt, leased), so
/// that no claim statement stands between an event and its first try.
const FAN_OUT_SQL: &str = "WITH created AS ( \
         INSERT INTO webhook_deliveries (subscription_id, event_id, event_type, body, \
             attempts, leased_until, next_attempt_at, created_at) \
         SELECT s.id, e.event_id, e.event_type, e.body, 1, $5, $4, $4 \
         FROM unnest($1::text[], $2::text[], $3::text[]) AS e (event_id, event_type, body) \
         JOIN webhook_subscriptions AS s ON e.event_type = ANY (s.event_types) \
         ON CONFLICT ON CONSTRAINT webhook_deliveries_once DO NOTHING \
         RETURNING id, attempts, subscription_id, event_id, body \
     ) \
     SELECT c.id, c.attempts, c.event_id, c.body, s.url, s.secret \
     FROM created c JOIN webhook_subscriptions s ON s.id = c.subscription_id \
     ORDER BY c.id";

/// SKIP LOCKED: dispatchers in other processes claim other rows instead of waiting. A leased
/// delivery stays due (its `next_attempt_at` is left alone) but is skipped until its lease
/// ends: the claim then changes no indexed column, so it is a heap-only update.
const CLAIM_SQL: &str = "WITH due AS ( \
         SELECT id, next_attempt_at FROM webhook_deliveries \
         WHERE status IN ('pending', 'failed') AND next_attempt_at <= $1 \
             AND (leased_until IS NULL OR leased_until <= $1) \
         ORDER BY next_attempt_at, id LIMIT $3 \
         FOR UPDATE SKIP LOCKED \
     ), claimed AS ( \
         UPDATE webhook_deliveries AS d \
         SET attempts = d.attempts + 1, leased_until = $2 \
         FROM due WHERE d.id = due.id \
         RETURNING d.id, d.attempts, d.subscription_id, d.event_id, d.body, due.next_attempt_at AS was_due \
     ) \
     SELECT c.id, c.attempts, c.event_id, c.body, s.url, s.secret \
     FROM claimed c JOIN webhook_subscriptions s ON s.id = c.subscription_id \
     ORDER BY c.was_due, c.id";

/// Fenced: only rows still held by the claim that tried them (same attempts, lease not over).
const MARK_SQL: &str = "UPDATE webhook_deliveries AS d SET \
         status = v.status, last_status_code = v.status_code, last_error = v.error, \
         next_attempt_at = v.retry_at, leased_until = NULL, \
         delivered_at = CASE WHEN v.status = 'delivered' THEN $7 END \
     FROM unnest($1::int8[], $2::int4[], $3::text[], $4::int4[], $5::text[], $6::timestamptz[]) \
         AS v(id, attempts, status, status_code, error, retry_at) \
     WHERE d.id = v.id AND d.attempts = v.attempts AND d.leased_until > $7 \
         AND d.status IN ('pending', 'failed')";

#[derive(QueryableByName)]
struct SubscriptionRow {
    #[diesel(sql_type = BigInt)]
    id: i64,
    #[diesel(sql_type = Text)]
    url: String,
    #[diesel(sql_type = Array<Text>)]
    event_types: Vec<String>,
    #[diesel(sql_type = Text)]
    secret: String,
    #[diesel(sql_type = Timestamptz)]
    created_at: DateTime<Utc>,
}

impl SubscriptionRow {
    fn into_domain(self) -> Result<Subscription, WorkflowError> {
        Ok(Subscription {
            id: SubscriptionId::new(self.id)?,
            url: WebhookUrl::parse(&self.url)?,
            event_types: EventTypes::parse(self.event_types.iter().map(String::as_str))?,
            secret: WebhookSecret::from_stored(self.secret),
            created_at: self.created_at,
        })
    }
}

#[derive(QueryableByName)]
struct DeliveryRow {
    #[diesel(sql_type = BigInt)]
    id: i64,
    #[diesel(sql_type = BigInt)]
    subscription_id: i64,
    #[diesel(sql_type = Text)]
    event_id: String,
    #[diesel(sql_type = Text)]
    event_type: String,
    #[diesel(sql_type = Text)]
    status: String,
    #[diesel(sql_type = Integer)]
    attempts: i32,
    #[diesel(sql_type = Nullable<Text>)]
    last_error: Option<String>,
    #[diesel(sql_type = Nullable<Integer>)]
    last_status_code: Option<i32>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    next_attempt_at: Option<DateTime<Utc>>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    delivered_at: Option<DateTime<Utc>>,
    #[diesel(sql_type = Timestamptz)]
    created_at: DateTime<Utc>,
}

impl DeliveryRow {
    fn into_domain(self) -> Result<Delivery, WorkflowError> {
        let bad = |what: &str, value: &str| {
            WorkflowError::internal(format!("delivery {}: bad {what} '{value}'", self.id))
        };
        let status =
            DeliveryStatus::parse(&self.status).ok_or_else(|| bad("status", &self.status))?;
        let event_type = CallbackKind::from_event_type(&self.event_type)
            .ok_or_else(|| bad("event type", &self.event_type))?;
        Ok(Delivery {
            id: DeliveryId::new(self.id)?,
            subscription_id: SubscriptionId::new(self.subscription_id)?,
            event_id: self.event_id,
            event_type,
            status,
            attempts: self.attempts,
            last_error: self.last_error,
            last_status_code: self.last_status_code.and_then(|c| u16::try_from(c).ok()),
            next_attempt_at: match status {
                DeliveryStatus::Pending | DeliveryStatus::Failed => self.next_attempt_at,
                DeliveryStatus::Delivered | DeliveryStatus::Dead => None,
            },
            delivered_at: self.delivered_at,
            created_at: self.created_at,
        })
    }
}

#[derive(QueryableByName)]
struct ClaimedRow {
    #[diesel(sql_type = BigInt)]
    id: i64,
    #[diesel(sql_type = Integer)]
    attempts: i32,
    #[diesel(sql_type = Text)]
    event_id: String,
    #[diesel(sql_type = Text)]
    body: String,
    #[diesel(sql_type = Text)]
    url: String,
    #[diesel(sql_type = Text)]
    secret: String,
}

impl ClaimedRow {
    fn into_domain(self) -> Result<ClaimedDelivery, WorkflowError> {
        Ok(ClaimedDelivery {
            lease: Lease {
                id: self.id,
                attempts: self.attempts,
            },
            url: WebhookUrl::parse(&self.url)?,
            secret: WebhookSecret::from_stored(self.secret),
            event_id: self.event_id,
            body: self.body,
        })
    }
}

#[derive(QueryableByName)]
struct CountRow {
    #[diesel(sql_type = Text)]
    status: String,
    #[diesel(sql_type = BigInt)]
    count: i64,
}

#[derive(QueryableByName)]
struct RetryRow {
    #[diesel(sql_type = Text)]
    status: String,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    leased_until: Option<DateTime<Utc>>,
}

impl WebhookStore for PgStore {
    async fn create_subscription(
        &self,
        new: NewSubscription,
        once: Option<Once<Subscription>>,
    ) -> Result<Done<Subscription>, WorkflowError> {
        let store = self.clone();
        detached("create subscription", async move {
            store
                .with_write(async |conn, sent| {
                    conn.transaction::<_, TxError, _>(async |conn| {
                        once_before_commit(conn, sent, once, async |conn| {
                            let types: Vec<&str> =
                                new.event_types.kinds().iter().map(|k| k.event_type()).collect();
                            let row: SubscriptionRow = diesel::sql_query(format!(
                                "INSERT INTO webhook_subscriptions (url, event_types, secret, created_at) \
                                 VALUES ($1, $2, $3, $4) RETURNING {SUBSCRIPTION_COLUMNS}"
                            ))
                            .bind::<Text, _>(new.url.as_str())
                            .bind::<Array<Text>, _>(&types)
                            .bind::<Text, _>(new.secret.as_str())
                            .bind::<Timestamptz, _>(new.created_at)
                            .get_result(conn)
                            .await?;
                            Ok(row.into_domain()?)
                        })
                        .await
                    })
                    .await
                })
                .await
        })
        .await
    }

    async fn subscriptions(&self) -> Result<Vec<Subscription>, WorkflowError> {
        let rows: Vec<SubscriptionRow> = self
            .with_conn(async |conn| {
                Ok(diesel::sql_query(format!(
                    "SELECT {SUBSCRIPTION_COLUMNS} FROM webhook_subscriptions ORDER BY id"
                ))
                .load(conn)
                .await?)
            })
            .await?;
        rows.into_iter().map(SubscriptionRow::into_domain).collect()
    }

    async fn delete_subscription(&self, id: SubscriptionId) -> Result<(), WorkflowError> {
        let deleted = self
            .with_conn(async |conn| {
                Ok(
                    diesel::sql_query("DELETE FROM webhook_subscriptions WHERE id = $1")
                        .bind::<BigInt, _>(id.get())
                        .execute(conn)
                        .await?,
                )
            })
            .await?;
        if deleted == 0 {
            return Err(WorkflowError::not_found(format!("subscription {id}")));
        }
        Ok(())
    }

    async fn deliveries(
        &self,
        subscription: SubscriptionId,
        status: Option<DeliveryStatus>,
    ) -> Result<Vec<Delivery>, WorkflowError> {
        let (exists, rows) = self
            .with_conn(async |conn| {
                // One snapshot for both reads.
                conn.transaction::<_, TxError, _>(async |conn| {
                    let exists: Vec<CountRow> = diesel::sql_query(
                        "SELECT 'subscription' AS status, count(*) AS count \
                         FROM webhook_subscriptions WHERE id = $1",
                    )
                    .bind::<BigInt, _>(subscription.get())
                    .load(conn)
                    .await?;
                    let rows: Vec<DeliveryRow> = diesel::sql_query(format!(
                        "SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries \
                         WHERE subscription_id = $1 AND ($2::text IS NULL OR status = $2) \
                         ORDER BY id DESC"
                    ))
                    .bind::<BigInt, _>(subscription.get())
                    .bind::<Nullable<Text>, _>(status.map(|s| s.as_str()))
                    .load(conn)
                    .await?;
                    Ok((exists.iter().any(|r| r.count > 0), rows))
                })
                .await
            })
            .await?;
        if !exists {
            return Err(WorkflowError::not_found(format!(
                "subscription {subscription}"
            )));
        }
        rows.into_iter().map(DeliveryRow::into_domain).collect()
    }

    async fn retry_delivery(
        &self,
        id: DeliveryId,
        now: DateTime<Utc>,
        once: Option<Once<Delivery>>,
    ) -> Result<Done<Delivery>, WorkflowError> {
        let store = self.clone();
        detached("retry delivery", async move {
            store
                .with_write(async |conn, sent| {
                    conn.transaction::<_, TxError, _>(async |conn| {
                        once_before_commit(conn, sent, once, async |conn| {
                            // Locked, so a claim waits for the retry (or the retry for it).
                            let current: Option<RetryRow> = diesel::sql_query(
                                "SELECT status, leased_until FROM webhook_deliveries \
                                 WHERE id = $1 FOR UPDATE",
                            )
                            .bind::<BigInt, _>(id.get())
                            .get_result(conn)
                            .await
                            .optional_row()?;
                            let Some(current) = current else {
                                return Err(
                                    WorkflowError::not_found(format!("delivery {id}")).into()
                                );
                            };
                            let status =
                                DeliveryStatus::parse(&current.status).ok_or_else(|| {
                                    WorkflowError::internal(format!("delivery {id}: bad status"))
                                })?;
                            if !status.is_retryable() {
                                return Err(WorkflowError::DeliveryNotRetryable {
                                    delivery: id.get(),
                                    reason: format!("is {status}"),
                                }
                                .into());
                            }
                            if current.leased_until.is_some_and(|until| until > now) {
                                return Err(WorkflowError::DeliveryNotRetryable {
                                    delivery: id.get(),
                                    reason: "is being sent right now".to_owned(),
                                }
                                .into());
                            }
                            let row: DeliveryRow = diesel::sql_query(format!(
                                "UPDATE webhook_deliveries SET status = 'pending', \
                                 next_attempt_at = $2, leased_until = NULL WHERE id = $1 \
                                 RETURNING {DELIVERY_COLUMNS}"
                            ))
                            .bind::<BigInt, _>(id.get())
                            .bind::<Timestamptz, _>(now)
                            .get_result(conn)
                            .await?;
                            Ok(row.into_domain()?)
                        })
                        .await
                    })
                    .await
                })
                .await
        })
        .await
    }

    async fn fan_out(
        &self,
        events: Vec<FanOutEvent>,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> Result<Vec<ClaimedDelivery>, WorkflowError> {
        if events.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<&str> = events.iter().map(|e| e.event_id.as_str()).collect();
        let types: Vec<&str> = events.iter().map(|e| e.kind.event_type()).collect();
        let bodies: Vec<&str> = events.iter().map(|e| e.body.as_str()).collect();
        let rows: Vec<ClaimedRow> = self
            .with_conn(async |conn| {
                Ok(diesel::sql_query(FAN_OUT_SQL)
                    .bind::<Array<Text>, _>(&ids)
                    .bind::<Array<Text>, _>(&types)
                    .bind::<Array<Text>, _>(&bodies)
                    .bind::<Timestamptz, _>(now)
                    .bind::<Timestamptz, _>(lease_until)
                    .load(conn)
                    .await?)
            })
            .await?;
        rows.into_iter().map(ClaimedRow::into_domain).collect()
    }

    async fn claim_deliveries(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<ClaimedDelivery>, WorkflowError> {
        let rows: Vec<ClaimedRow> = self
            .with_conn(async |conn| {
                Ok(diesel::sql_query(CLAIM_SQL)
                    .bind::<Timestamptz, _>(now)
                    .bind::<Timestamptz, _>(lease_until)
                    .bind::<BigInt, _>(i64::from(limit))
                    .load(conn)
                    .await?)
            })
            .await?;
        rows.into_iter().map(ClaimedRow::into_domain).collect()
    }

    async fn mark_deliveries(
        &self,
        marks: Vec<DeliveryMark>,
        now: DateTime<Utc>,
    ) -> Result<u64, WorkflowError> {
        let mut ids = Vec::with_capacity(marks.len());
        let mut attempts = Vec::with_capacity(marks.len());
        let mut statuses = Vec::with_capacity(marks.len());
        let mut codes: Vec<Option<i32>> = Vec::with_capacity(marks.len());
        let mut errors: Vec<Option<String>> = Vec::with_capacity(marks.len());
        let mut retry_at: Vec<Option<DateTime<Utc>>> = Vec::with_capacity(marks.len());
        for mark in marks {
            ids.push(mark.lease.id);
            attempts.push(mark.lease.attempts);
            match mark.outcome {
                MarkOutcome::Delivered { status } => {
                    statuses.push(DeliveryStatus::Delivered.as_str());
                    codes.push(Some(i32::from(status)));
                    errors.push(None);
                    retry_at.push(None);
                }
                MarkOutcome::Failed {
                    status,
                    error,
                    retry_at: at,
                } => {
                    statuses.push(if at.is_some() {
                        DeliveryStatus::Failed.as_str()
                    } else {
                        DeliveryStatus::Dead.as_str()
                    });
                    codes.push(status.map(i32::from));
                    errors.push(Some(error));
                    retry_at.push(at);
                }
            }
        }
        self.with_conn(async |conn| {
            let marked = diesel::sql_query(MARK_SQL)
                .bind::<Array<BigInt>, _>(&ids)
                .bind::<Array<Integer>, _>(&attempts)
                .bind::<Array<Text>, _>(&statuses)
                .bind::<Array<Nullable<Integer>>, _>(&codes)
                .bind::<Array<Nullable<Text>>, _>(&errors)
                .bind::<Array<Nullable<Timestamptz>>, _>(&retry_at)
                .bind::<Timestamptz, _>(now)
                .execute(conn)
                .await?;
            Ok(marked as u64)
        })
        .await
    }

    async fn delivery_counts(&self) -> Result<DeliveryCounts, WorkflowError> {
        let rows: Vec<CountRow> = self
            .with_conn(async |conn| {
                Ok(diesel::sql_query(
                    "SELECT status, count(*) AS count FROM webhook_deliveries GROUP BY status",
                )
                .load(conn)
                .await?)
            })
            .await?;
        let mut counts = DeliveryCounts::default();
        for row in rows {
            let n = u64::try_from(row.count).unwrap_or_default();
            match DeliveryStatus::parse(&row.status) {
                Some(DeliveryStatus::Pending) => counts.pending = n,
                Some(DeliveryStatus::Failed) => counts.failed = n,
                Some(DeliveryStatus::Delivered) => counts.delivered = n,
                Some(DeliveryStatus::Dead) => counts.dead = n,
                None => {}
            }
        }
        Ok(counts)
    }
}

/// `get_result` for a row that may be missing.
trait OptionalRow<T> {
    fn optional_row(self) -> Result<Option<T>, diesel::result::Error>;
}

impl<T> OptionalRow<T> for Result<T, diesel::result::Error> {
    fn optional_row(self) -> Result<Option<T>, diesel::result::Error> {
        match self {
            Ok(value) => Ok(Some(value)),
            Err(diesel::result::Error::NotFound) => Ok(None),
            Err(e) => Err(e),
        }
    }
}
