//! Outbound adapter, PostgreSQL: a user's inbox, the steps awaiting their action.
//!
//! The `workflow_inbox` table holds one row per (eligible user, awaiting step), kept in step
//! with the step rows by a database trigger and keyed by user and activation time: a user's
//! page is one index range scan, however many instances there are. A delegate's page is one
//! such scan per user it stands for (itself and each delegator), merged.

use chrono::{DateTime, Utc};
use diesel::pg::Pg;
use diesel::prelude::*;
use diesel::query_builder::AstPass;
use diesel::sql_types::{Array, BigInt, Integer, Nullable, Text, Timestamptz};
use diesel_async::RunQueryDsl;

use super::PgStore;
use super::rows::{PendingRow, user_id as stored_user_id};
use super::schema::{workflow_inbox, workflow_instance_steps, workflow_instances};
use super::statement::{Statement, StaticStatement, no_such_placeholder};
use crate::domain::WorkflowError;
use crate::domain::model::{InboxCursor, PendingStep, UserId};

pub(super) async fn pending_steps(
    store: &PgStore,
    user: UserId,
    limit: u32,
    after: Option<InboxCursor>,
) -> Result<Vec<PendingStep>, WorkflowError> {
    store
        .with_conn(async |conn| {
            let mut query = workflow_inbox::table
                .inner_join(workflow_instance_steps::table.inner_join(workflow_instances::table))
                .filter(workflow_inbox::user_id.eq(user.get()))
                .into_boxed();
            if let Some(cursor) = after {
                // `>=` on the time bounds the index range; the rest breaks the tie on step id.
                let (at, step) = (cursor.activated_at, cursor.step_id.get());
                query = query.filter(
                    workflow_inbox::activated_at.ge(at).and(
                        workflow_inbox::activated_at
                            .gt(at)
                            .or(workflow_inbox::step_id.gt(step)),
                    ),
                );
            }
            let rows: Vec<PendingRow> = query
                .order((workflow_inbox::activated_at, workflow_inbox::step_id))
                .limit(i64::from(limit))
                .select((
                    workflow_instance_steps::id,
                    workflow_instance_steps::step_order,
                    workflow_instance_steps::name,
                    workflow_instance_steps::approver_user_id,
                    workflow_instance_steps::approver_role,
                    // The inbox's copy of the activation time: what the page is ordered by,
                    // so the cursor made from it is exact.
                    workflow_inbox::activated_at.nullable(),
                    workflow_instances::id,
                    workflow_instances::event,
                    workflow_instances::entity_type,
                    workflow_instances::entity_id,
                ))
                .load(conn)
                .await?;
            Ok(rows
                .into_iter()
                .map(PendingRow::into_domain)
                .collect::<Result<Vec<_>, _>>()?)
        })
        .await
}

/// A delegate's inbox: [`pending_steps`] of the user and of each delegator, merged. Each user's
/// rows are one index range scan (the inbox key, from the cursor on, at most `limit` rows:
/// enough, as a page holds `limit` steps in the same order); a step reached through several
/// users is listed once, as the user's own when it is, else for the lowest delegator.
const DELEGATED_INBOX_SQL: &str = "\
SELECT DISTINCT ON (x.activated_at, x.step_id)
       s.id AS step_id, s.step_order, s.name, s.approver_user_id, s.approver_role,
       x.activated_at, i.id AS instance_id, i.event, i.entity_type, i.entity_id,
       NULLIF(x.user_id, $1) AS on_behalf_of
FROM unnest($2::int8[]) AS who(user_id)
CROSS JOIN LATERAL (
    SELECT b.user_id, b.activated_at, b.step_id FROM workflow_inbox b
    WHERE b.user_id = who.user_id AND (b.activated_at, b.step_id) > ($3, $4)
    ORDER BY b.activated_at, b.step_id
    LIMIT $5
) x
JOIN workflow_instance_steps s ON s.id = x.step_id
JOIN workflow_instances i ON i.id = s.instance_id
WHERE x.user_id = $1 OR NOT s.eligible_user_ids @> ARRAY[$1::int8]
ORDER BY x.activated_at, x.step_id, x.user_id <> $1, x.user_id
LIMIT $5";

/// Binds of [`DELEGATED_INBOX_SQL`].
struct DelegatedInbox {
    user: i64,
    users: Vec<i64>,
    after_at: DateTime<Utc>,
    after_step: i64,
    limit: i64,
}

impl StaticStatement for DelegatedInbox {
    const SQL: &'static str = DELEGATED_INBOX_SQL;

    fn bind<'b>(&'b self, n: usize, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        match n {
            1 => out.push_bind_param::<BigInt, _>(&self.user),
            2 => out.push_bind_param::<Array<BigInt>, _>(&self.users),
            3 => out.push_bind_param::<Timestamptz, _>(&self.after_at),
            4 => out.push_bind_param::<BigInt, _>(&self.after_step),
            5 => out.push_bind_param::<BigInt, _>(&self.limit),
            other => Err(no_such_placeholder(other)),
        }
    }
}

/// One line of a delegate's inbox.
#[derive(QueryableByName)]
struct DelegatedRow {
    #[diesel(sql_type = BigInt)]
    step_id: i64,
    #[diesel(sql_type = Integer)]
    step_order: i32,
    #[diesel(sql_type = Text)]
    name: String,
    #[diesel(sql_type = Nullable<BigInt>)]
    approver_user_id: Option<i64>,
    #[diesel(sql_type = Nullable<Text>)]
    approver_role: Option<String>,
    #[diesel(sql_type = Timestamptz)]
    activated_at: DateTime<Utc>,
    #[diesel(sql_type = BigInt)]
    instance_id: i64,
    #[diesel(sql_type = Text)]
    event: String,
    #[diesel(sql_type = Text)]
    entity_type: String,
    #[diesel(sql_type = BigInt)]
    entity_id: i64,
    #[diesel(sql_type = Nullable<BigInt>)]
    on_behalf_of: Option<i64>,
}

pub(super) async fn delegated_pending_steps(
    store: &PgStore,
    user: UserId,
    delegators: Vec<UserId>,
    limit: u32,
    after: Option<InboxCursor>,
) -> Result<Vec<PendingStep>, WorkflowError> {
    let users = std::iter::once(user)
        .chain(delegators)
        .map(UserId::get)
        .collect();
    // No cursor: from before any activation (every inbox row has a later time and a step id).
    let (after_at, after_step) = after.map_or((DateTime::UNIX_EPOCH, 0), |cursor| {
        (cursor.activated_at, cursor.step_id.get())
    });
    let statement = DelegatedInbox {
        user: user.get(),
        users,
        after_at,
        after_step,
        limit: i64::from(limit),
    };
    store
        .with_conn(async |conn| {
            let rows: Vec<DelegatedRow> = Statement(statement).load(conn).await?;
            rows.into_iter()
                .map(|row| {
                    let mut step = PendingRow {
                        step_id: row.step_id,
                        step_order: row.step_order,
                        name: row.name,
                        approver_user_id: row.approver_user_id,
                        approver_role: row.approver_role,
                        activated_at: Some(row.activated_at),
                        instance_id: row.instance_id,
                        event: row.event,
                        entity_type: row.entity_type,
                        entity_id: row.entity_id,
                    }
                    .into_domain()?;
                    step.on_behalf_of = row.on_behalf_of.map(stored_user_id).transpose()?;
                    Ok(step)
                })
                .collect::<Result<Vec<_>, WorkflowError>>()
                .map_err(Into::into)
        })
        .await
}
