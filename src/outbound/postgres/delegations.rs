//! Outbound adapter, PostgreSQL: delegations, part of the `RoleResolver` port (the directory).
//!
//! One row per delegator (`workflow_delegations`, keyed by the delegator, indexed by delegate
//! and end time). A delegation runs while `now < until`, `now` from the service's clock, so
//! every read here takes `now` and nothing here reads the database's clock.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncConnection, RunQueryDsl};

use super::errors::TxError;
use super::rows::user_id as stored_user_id;
use super::schema::{users, workflow_delegations};
use super::{Conn, PgStore};
use crate::domain::WorkflowError;
use crate::domain::model::{Comment, Delegation, UserId};

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
    /// See `RoleResolver::put_delegation`. The two users' rows are locked in id order first,
    /// so two users delegating to each other at once queue, and the later one sees the cycle.
    pub(super) async fn store_delegation(
        &self,
        delegation: Delegation,
        now: DateTime<Utc>,
    ) -> Result<(), WorkflowError> {
        self.with_conn(async |conn| {
            conn.transaction::<_, TxError, _>(async |conn| {
                let (user, to_user) = (delegation.user_id, delegation.to_user_id);
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
                let cycle: bool = diesel::select(diesel::dsl::exists(
                    workflow_delegations::table
                        .filter(workflow_delegations::user_id.eq(to_user.get()))
                        .filter(workflow_delegations::to_user_id.eq(user.get()))
                        .filter(workflow_delegations::until.gt(now)),
                ))
                .get_result(conn)
                .await?;
                if cycle {
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
