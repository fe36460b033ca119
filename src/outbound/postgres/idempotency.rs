//! Outbound adapter, PostgreSQL: idempotency keys and their kept answers, claimed and written
//! inside the unit of work of the request's effect.
//!
//! The claim is an insert of the key: a second request with the key blocks on the first one's
//! uncommitted row until it commits (then finds its answer) or rolls back (then claims the key
//! itself), so two requests with one key never both run. A keyed request costs two statements
//! more (the claim, and the answer); a request without a key costs nothing more.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::upsert::on_constraint;
use diesel_async::RunQueryDsl;

use super::errors::TxError;
use super::schema::idempotency_keys;
use super::{Conn, PgStore, Sent};
use crate::domain::WorkflowError;
use crate::domain::model::{Answer, Done, IdempotencyKey, KeptAnswer, Once};

/// Runs `work` (inside the caller's transaction) unless `once` names a key already kept: then
/// its answer is replayed. With a key, the key is claimed first and the answer kept after.
pub(super) async fn once_in<T, F>(
    conn: &mut Conn,
    once: Option<Once<T>>,
    work: F,
) -> Result<Done<T>, TxError>
where
    F: for<'c> AsyncFnOnce(&'c mut Conn) -> Result<T, TxError>,
{
    let Some(once) = once else {
        return work(conn).await.map(Done::Fresh);
    };
    if let Some(answer) = claim(conn, &once).await? {
        return Ok(Done::Replayed(answer));
    }
    let value = work(conn).await?;
    let answer = (once.render)(&value);
    diesel::update(idempotency_keys::table.find(once.key.as_str()))
        .set((
            idempotency_keys::status.eq(i32::from(answer.status)),
            idempotency_keys::body.eq(&answer.body),
        ))
        .execute(conn)
        .await?;
    Ok(Done::Fresh(value))
}

/// [`once_in`] for a write about to commit: marks it as sent (see [`Sent`]) once `work` has
/// succeeded, since the caller's `COMMIT` follows. Runs inside the caller's transaction.
pub(super) async fn once_before_commit<T, F>(
    conn: &mut Conn,
    sent: &Sent,
    once: Option<Once<T>>,
    work: F,
) -> Result<Done<T>, TxError>
where
    F: for<'c> AsyncFnOnce(&'c mut Conn) -> Result<T, TxError>,
{
    let done = once_in(conn, once, work).await?;
    sent.mark();
    Ok(done)
}

/// Claims the key; `Some` with the kept answer if a committed request already holds it.
async fn claim<T>(conn: &mut Conn, once: &Once<T>) -> Result<Option<Answer>, TxError> {
    let claimed = diesel::insert_into(idempotency_keys::table)
        .values((
            idempotency_keys::key.eq(once.key.as_str()),
            idempotency_keys::request.eq(&once.request),
            idempotency_keys::created_at.eq(diesel::dsl::now),
        ))
        .on_conflict(on_constraint("idempotency_keys_pkey"))
        .do_nothing()
        .execute(conn)
        .await?;
    if claimed == 1 {
        return Ok(None);
    }
    match read(conn, &once.key).await? {
        Some(kept) => Ok(Some(once.replay(kept)?)),
        // Purged between the two statements: the key is free again, but this transaction's
        // snapshot can't claim it safely any more.
        None => Err(WorkflowError::Unavailable(format!(
            "idempotency key '{}' was purged while being claimed",
            once.key
        ))
        .into()),
    }
}

/// A row of `idempotency_keys`: request digest, status, body, creation time.
type KeyRow = (String, Option<i32>, Option<String>, DateTime<Utc>);

async fn read(conn: &mut Conn, key: &IdempotencyKey) -> Result<Option<KeptAnswer>, TxError> {
    let row: Option<KeyRow> = idempotency_keys::table
        .find(key.as_str())
        .select((
            idempotency_keys::request,
            idempotency_keys::status,
            idempotency_keys::body,
            idempotency_keys::created_at,
        ))
        .first(conn)
        .await
        .optional()?;
    let Some((request, status, body, created_at)) = row else {
        return Ok(None);
    };
    // The answer is written in the claiming transaction, so a visible row has one.
    let (Some(status), Some(body)) = (status, body) else {
        return Err(
            WorkflowError::internal(format!("idempotency key '{key}' has no answer")).into(),
        );
    };
    let status = u16::try_from(status)
        .map_err(|_| WorkflowError::internal(format!("idempotency key '{key}': bad status")))?;
    Ok(Some(KeptAnswer {
        request,
        answer: Answer { status, body },
        created_at,
    }))
}

pub(super) async fn kept_answer(
    store: &PgStore,
    key: &IdempotencyKey,
) -> Result<Option<KeptAnswer>, WorkflowError> {
    store.with_conn(async |conn| read(conn, key).await).await
}

pub(super) async fn purge(store: &PgStore, before: DateTime<Utc>) -> Result<u64, WorkflowError> {
    store
        .with_conn(async |conn| {
            let deleted = diesel::delete(
                idempotency_keys::table.filter(idempotency_keys::created_at.lt(before)),
            )
            .execute(conn)
            .await?;
            Ok(deleted as u64)
        })
        .await
}
