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
    EventTypes, FirstTry, MarkOutcome, NewSubscription, Subscription, SubscriptionId,
    WebhookMessage, WebhookSecret, WebhookUrl,
};
use crate::domain::webhooks::ports::WebhookStore;

const SUBSCRIPTION_COLUMNS: &str = "id, url, event_types, secret, created_at";
const DELIVERY_COLUMNS: &str = "id, subscription_id, event_id, event_type, status, attempts, \
     last_error, last_status_code, next_attempt_at, delivered_at, created_at";

/// The subscriptions with a delivery of each event: one index lookup per subscription and
/// event (the unique constraint's index leads with the subscription).
const RECORDED_SQL: &str = "SELECT s.id AS subscription_id, e.event_id \
     FROM webhook_subscriptions AS s CROSS JOIN unnest($1::text[]) AS e (event_id) \
     WHERE EXISTS (SELECT 1 FROM webhook_deliveries AS d \
                   WHERE d.subscription_id = s.id AND d.event_id = e.event_id)";

/// One statement for a round's first tries, each delivery written once, with its outcome: a
/// delivered one never enters the due index, and keeps no body (it is never sent again).
/// Fenced per row by the event's outbox claim, and a subscription deleted meanwhile gets none.
const RECORD_FIRST_TRIES_SQL: &str = "INSERT INTO webhook_deliveries (subscription_id, event_id, \
         event_type, body, status, attempts, last_status_code, last_error, next_attempt_at, \
         delivered_at, created_at) \
     SELECT v.subscription_id, v.event_id, v.event_type, v.body, v.status, 1, v.status_code, \
         v.error, v.retry_at, CASE WHEN v.status = 'delivered' THEN $11 END, $11 \
     FROM unnest($1::int8[], $2::text[], $3::text[], $4::text[], $5::text[], $6::int4[], \
             $7::text[], $8::timestamptz[], $9::int8[], $10::int4[]) \
         AS v(subscription_id, event_id, event_type, body, status, status_code, error, retry_at, \
             outbox_id, outbox_attempts) \
     JOIN workflow_callback_outbox AS o ON o.id = v.outbox_id \
         AND o.attempts = v.outbox_attempts AND o.delivered_at IS NULL AND o.due_at > $11 \
     JOIN webhook_subscriptions AS s ON s.id = v.subscription_id \
     ON CONFLICT ON CONSTRAINT webhook_deliveries_once DO NOTHING";

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

/// Fenced: only rows still held by the claim that tried them (same attempts, lease not over). A
/// delivered one drops its body, as it is never sent again.
const MARK_SQL: &str = "UPDATE webhook_deliveries AS d SET \
         status = v.status, last_status_code = v.status_code, last_error = v.error, \
         body = CASE WHEN v.status = 'delivered' THEN NULL ELSE d.body END, \
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
            message: WebhookMessage {
                url: WebhookUrl::parse(&self.url)?,
                secret: WebhookSecret::from_stored(self.secret),
                event_id: self.event_id,
                body: self.body,
            },
        })
    }
}

#[derive(QueryableByName)]
struct RecordedRow {
    #[diesel(sql_type = BigInt)]
    subscription_id: i64,
    #[diesel(sql_type = Text)]
    event_id: String,
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

    async fn recorded_deliveries(
        &self,
        event_ids: Vec<String>,
    ) -> Result<Vec<(SubscriptionId, String)>, WorkflowError> {
        if event_ids.is_empty() {
            return Ok(Vec::new());
        }
        let rows: Vec<RecordedRow> = self
            .with_conn(async |conn| {
                Ok(diesel::sql_query(RECORDED_SQL)
                    .bind::<Array<Text>, _>(&event_ids)
                    .load(conn)
                    .await?)
            })
            .await?;
        rows.into_iter()
            .map(|row| Ok((SubscriptionId::new(row.subscription_id)?, row.event_id)))
            .collect()
    }

    async fn record_first_tries(
        &self,
        tries: Vec<FirstTry>,
        now: DateTime<Utc>,
    ) -> Result<u64, WorkflowError> {
        if tries.is_empty() {
            return Ok(0);
        }
        let mut subscriptions = Vec::with_capacity(tries.len());
        let mut event_ids = Vec::with_capacity(tries.len());
        let mut types = Vec::with_capacity(tries.len());
        let mut bodies = Vec::with_capacity(tries.len());
        let mut outbox_ids = Vec::with_capacity(tries.len());
        let mut outbox_attempts = Vec::with_capacity(tries.len());
        let mut outcomes = Outcomes::with_capacity(tries.len());
        for first in tries {
            subscriptions.push(first.subscription_id.get());
            event_ids.push(first.event_id);
            types.push(first.kind.event_type());
            // Kept only to be sent again.
            let delivered = matches!(first.outcome, MarkOutcome::Delivered { .. });
            bodies.push((!delivered).then_some(first.body));
            outbox_ids.push(first.outbox.id);
            outbox_attempts.push(first.outbox.attempts);
            outcomes.push(first.outcome);
        }
        self.with_conn(async |conn| {
            let created = diesel::sql_query(RECORD_FIRST_TRIES_SQL)
                .bind::<Array<BigInt>, _>(&subscriptions)
                .bind::<Array<Text>, _>(&event_ids)
                .bind::<Array<Text>, _>(&types)
                .bind::<Array<Nullable<Text>>, _>(&bodies)
                .bind::<Array<Text>, _>(&outcomes.statuses)
                .bind::<Array<Nullable<Integer>>, _>(&outcomes.codes)
                .bind::<Array<Nullable<Text>>, _>(&outcomes.errors)
                .bind::<Array<Nullable<Timestamptz>>, _>(&outcomes.retry_at)
                .bind::<Array<BigInt>, _>(&outbox_ids)
                .bind::<Array<Integer>, _>(&outbox_attempts)
                .bind::<Timestamptz, _>(now)
                .execute(conn)
                .await?;
            Ok(created as u64)
        })
        .await
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
        let mut outcomes = Outcomes::with_capacity(marks.len());
        for mark in marks {
            ids.push(mark.lease.id);
            attempts.push(mark.lease.attempts);
            outcomes.push(mark.outcome);
        }
        self.with_conn(async |conn| {
            let marked = diesel::sql_query(MARK_SQL)
                .bind::<Array<BigInt>, _>(&ids)
                .bind::<Array<Integer>, _>(&attempts)
                .bind::<Array<Text>, _>(&outcomes.statuses)
                .bind::<Array<Nullable<Integer>>, _>(&outcomes.codes)
                .bind::<Array<Nullable<Text>>, _>(&outcomes.errors)
                .bind::<Array<Nullable<Timestamptz>>, _>(&outcomes.retry_at)
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

/// Tries' outcomes as the columns they set, one array per column.
struct Outcomes {
    statuses: Vec<&'static str>,
    codes: Vec<Option<i32>>,
    errors: Vec<Option<String>>,
    retry_at: Vec<Option<DateTime<Utc>>>,
}

impl Outcomes {
    fn with_capacity(n: usize) -> Self {
        Self {
            statuses: Vec::with_capacity(n),
            codes: Vec::with_capacity(n),
            errors: Vec::with_capacity(n),
            retry_at: Vec::with_capacity(n),
        }
    }

    fn push(&mut self, outcome: MarkOutcome) {
        match outcome {
            MarkOutcome::Delivered { status } => {
                self.statuses.push(DeliveryStatus::Delivered.as_str());
                self.codes.push(Some(i32::from(status)));
                self.errors.push(None);
                self.retry_at.push(None);
            }
            MarkOutcome::Failed {
                status,
                error,
                retry_at,
            } => {
                self.statuses.push(if retry_at.is_some() {
                    DeliveryStatus::Failed.as_str()
                } else {
                    DeliveryStatus::Dead.as_str()
                });
                self.codes.push(status.map(i32::from));
                self.errors.push(Some(error));
                self.retry_at.push(retry_at);
            }
        }
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
