//! Outbound adapter, PostgreSQL: a user's inbox, the steps awaiting their action.
//!
//! The `workflow_inbox` table holds one row per (eligible user, awaiting step), kept in step
//! with the step rows by a database trigger and keyed by user and activation time: a user's
//! page is one index range scan, however many instances there are.

use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use super::PgStore;
use super::rows::PendingRow;
use super::schema::{workflow_inbox, workflow_instance_steps, workflow_instances};
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
