//! Outbound adapter, PostgreSQL: delegations, part of the `RoleResolver` port (the directory).
//!
//! One row per delegator (`workflow_delegations`, keyed by the delegator, indexed by delegate
//! and end time). A delegation runs while `now < until`, `now` from the service's clock, so
//! every read here takes `now` and nothing here reads the database's clock.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Timestamptz};
use diesel_async::{AsyncConnection, RunQueryDsl};

use super::errors::TxError;
use super::rows::user_id as stored_user_id;
use super::schema::{users, workflow_delegations};
use super::{Conn, PgStore};
use crate::domain::WorkflowError;
use crate::domain::model::{Comment, Delegation, UserId};

/// The advisory lock every delegation write takes first (an arbitrary, fixed key).
const DELEGATION_WRITES_LOCK: i64 = 0x6465_6c65_6761_7465;

/// Whether delegating `$3` to `$1` closes a cycle: following the running delegations (at `$2`)
/// from `$1` reaches `$3`. `UNION` stops the walk at a user seen before.
const CLOSES_A_CYCLE_SQL: &str = "WITH RECURSIVE chain (user_id) AS (
        SELECT to_user_id FROM workflow_delegations WHERE user_id = $1 AND until > $2
    UNION
        SELECT d.to_user_id FROM workflow_delegations d JOIN chain c ON d.user_id = c.user_id
        WHERE d.until > $2
    )
    SELECT EXISTS (SELECT 1 FROM chain WHERE user_id = $3) AS closes";

#[derive(QueryableByName)]
struct ClosesACycle {
    #[diesel(sql_type = diesel::sql_types::Bool)]
    closes: bool,
}

/// One stored delegation.
#[derive(Queryable, Selectable)]
#[diesel(table_name = workflow_delegations)]
#[diesel(check_for_backend(diesel::pg::Pg))]
struct DelegationRow {
    user_id: i64,
    to_user_id: i64,
    until: DateTime<Utc>,
    reason: Option<String>,
    created_at: DateTime<Utc>,
}

impl DelegationRow {
    fn into_domain(self) -> Result<Delegation, WorkflowError> {
        Ok(Delegation {
            user_id: stored_user_id(self.user_id)?,
            to_user_id: stored_user_id(self.to_user_id)?,
            until: self.until,
            reason: self
                .reason
                .map(Comment::new)
                .transpose()
                .map_err(|_| WorkflowError::internal("a stored delegation reason is invalid"))?,
            created_at: self.created_at,
        })
    }
}

/// The delegations to `user` from active users, running or not: one lookup on the delegate
/// index. Read inside a decision's unit of work, only for an actor the step's snapshot lacks.
pub(super) async fn delegations_to(
    conn: &mut Conn,
    user: UserId,
) -> Result<Vec<Delegation>, TxError> {
    let rows: Vec<DelegationRow> = workflow_delegations::table
        .inner_join(users::table.on(users::id.eq(workflow_delegations::user_id)))
        .filter(workflow_delegations::to_user_id.eq(user.get()))
        .filter(users::active)
        .select(DelegationRow::as_select())
        .load(conn)
        .await?;
    Ok(rows
        .into_iter()
        .map(DelegationRow::into_domain)
        .collect::<Result<_, _>>()?)
}

impl PgStore {
    /// See `RoleResolver::put_delegation`. The two users' rows are locked in id order, after
    /// the delegation writes' lock, so delegations written at once queue, and the later one
    /// sees any cycle it would close.
    pub(super) async fn store_delegation(
        &self,
        delegation: Delegation,
        now: DateTime<Utc>,
    ) -> Result<(), WorkflowError> {
        self.with_conn(async |conn| {
            conn.transaction::<_, TxError, _>(async |conn| {
                let (user, to_user) = (delegation.user_id, delegation.to_user_id);
                // Delegation writes queue on one lock, so that delegations written at once
                // can't close a cycle between them unseen (they are rare; the lock is cheap).
                diesel::sql_query("SELECT pg_advisory_xact_lock($1)")
                    .bind::<BigInt, _>(DELEGATION_WRITES_LOCK)
                    .execute(conn)
                    .await?;
                let locked: Vec<(i64, bool)> = users::table
                    .filter(users::id.eq_any([user.get(), to_user.get()]))
                    .order(users::id)
                    .select((users::id, users::active))
                    .for_update()
                    .load(conn)
                    .await?;
                let entry = |id: UserId| locked.iter().find(|(u, _)| *u == id.get());
                if entry(user).is_none() {
                    return Err(WorkflowError::not_found(format!("user {user}")).into());
                }
                match entry(to_user) {
                    None => {
                        return Err(WorkflowError::UnknownUser {
                            user: to_user,
                            field: "to_user_id",
                        }
                        .into());
                    }
                    Some((_, false)) => {
                        return Err(WorkflowError::inactive_delegate(to_user).into());
                    }
                    Some(_) => {}
                }
                let cycle = diesel::sql_query(CLOSES_A_CYCLE_SQL)
                    .bind::<BigInt, _>(to_user.get())
                    .bind::<Timestamptz, _>(now)
                    .bind::<BigInt, _>(user.get())
                    .get_result::<ClosesACycle>(conn)
                    .await?;
                if cycle.closes {
                    return Err(WorkflowError::DelegationCycle { user, to_user }.into());
                }
                let values = (
                    workflow_delegations::user_id.eq(user.get()),
                    workflow_delegations::to_user_id.eq(to_user.get()),
                    workflow_delegations::until.eq(delegation.until),
                    workflow_delegations::reason
                        .eq(delegation.reason.as_ref().map(Comment::as_str)),
                    workflow_delegations::created_at.eq(delegation.created_at),
                );
                diesel::insert_into(workflow_delegations::table)
                    .values(values)
                    .on_conflict(workflow_delegations::user_id)
                    .do_update()
                    .set(values)
                    .execute(conn)
                    .await?;
                Ok(())
            })
            .await
        })
        .await
    }

    /// See `RoleResolver::end_delegation`.
    pub(super) async fn remove_delegation(
        &self,
        user: UserId,
        now: DateTime<Utc>,
    ) -> Result<bool, WorkflowError> {
        self.with_conn(async |conn| {
            let until: Option<DateTime<Utc>> = diesel::delete(
                workflow_delegations::table.filter(workflow_delegations::user_id.eq(user.get())),
            )
            .returning(workflow_delegations::until)
            .get_result(conn)
            .await
            .optional()?;
            Ok(until.is_some_and(|until| now < until))
        })
        .await
    }

    /// See `RoleResolver::delegation`.
    pub(super) async fn running_delegation(
        &self,
        user: UserId,
        now: DateTime<Utc>,
    ) -> Result<Option<Delegation>, WorkflowError> {
        self.with_conn(async |conn| {
            let row: Option<DelegationRow> = workflow_delegations::table
                .filter(workflow_delegations::user_id.eq(user.get()))
                .filter(workflow_delegations::until.gt(now))
                .select(DelegationRow::as_select())
                .first(conn)
                .await
                .optional()?;
            Ok(row.map(DelegationRow::into_domain).transpose()?)
        })
        .await
    }

    /// See `RoleResolver::delegators_of`.
    pub(super) async fn running_delegators_of(
        &self,
        user: UserId,
        now: DateTime<Utc>,
    ) -> Result<Vec<UserId>, WorkflowError> {
        self.with_conn(async |conn| {
            let ids: Vec<i64> = workflow_delegations::table
                .inner_join(users::table.on(users::id.eq(workflow_delegations::user_id)))
                .filter(workflow_delegations::to_user_id.eq(user.get()))
                .filter(workflow_delegations::until.gt(now))
                .filter(users::active)
                .order(workflow_delegations::user_id)
                .select(workflow_delegations::user_id)
                .load(conn)
                .await?;
            Ok(ids
                .into_iter()
                .map(stored_user_id)
                .collect::<Result<_, _>>()?)
        })
        .await
    }
}
