//! Outbound adapter, PostgreSQL: the instance aggregate (an instance row, its step rows and its
//! audit rows): the trigger's write and the instance read.
//!
//! A trigger's write is one statement (instance, steps and audit in data-modifying CTEs,
//! guarded by a share lock on the template's current version): one round trip.

use chrono::{DateTime, Utc};
use diesel::pg::Pg;
use diesel::prelude::*;
use diesel::query_builder::AstPass;
use diesel::sql_types::{Array, BigInt, Bytea, Integer, Jsonb, Nullable, Text, Timestamptz};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};

use super::errors::{TxError, unique_violation_of};
use super::idempotency::once_before_commit;
use super::rows::{AuditRow, DueColumns, InstanceRow, StepRow, approver_columns};
use super::schema::{workflow_audit_log, workflow_instance_steps, workflow_instances};
use super::statement::{Statement, StaticStatement, no_such_placeholder};
use super::{ACTIVE, Conn, PgStore, detached};
use crate::domain::model::{Done, Instance, InstanceId, InstanceStatus, NewInstance, Once, UserId};
use crate::domain::{WorkflowError, audit_chain};

const ONE_ACTIVE_INSTANCE_INDEX: &str = "workflow_instances_one_active";

/// The trigger's write: one statement. Yields one row with the stored instance, steps and audit
/// as JSON, or a row of NULLs when the template is no longer at the version read (or inactive).
const CREATE_INSTANCE_SQL: &str = include_str!("sql/create_instance.sql");

pub(super) async fn create_instance(
    store: &PgStore,
    new: NewInstance,
    once: Option<Once<Instance>>,
) -> Result<Done<Instance>, WorkflowError> {
    let store = store.clone();
    // On a task of its own, so that a client hanging up can't cancel the write half-way.
    detached("trigger", async move {
        store
            .with_write(async |conn, sent| match once {
                // Without a key the write is one statement, needing no explicit transaction:
                // it commits by itself once sent.
                None => {
                    sent.mark();
                    write_instance(conn, &new).await.map(Done::Fresh)
                }
                Some(once) => {
                    conn.transaction::<_, TxError, _>(async |conn| {
                        once_before_commit(conn, sent, Some(once), async |conn| {
                            write_instance(conn, &new).await
                        })
                        .await
                    })
                    .await
                }
            })
            .await
    })
    .await
}

async fn write_instance(conn: &mut Conn, new: &NewInstance) -> Result<Instance, TxError> {
    // The one-active index holds only open instances, so it can't refuse an instance that is
    // approved as it starts (every step skipped): look for an open one first, as the index
    // would. One more read, for such triggers only.
    if new.status == InstanceStatus::Approved
        && let Some(existing) = active_instance(conn, new).await?
    {
        return Err(WorkflowError::InstanceAlreadyActive { existing }.into());
    }
    let result = Statement(CreateInstance::new(new)?)
        .get_result::<CreatedRow>(conn)
        .await
        .map_err(TxError::from);
    match result {
        Ok(CreatedRow { instance: None, .. }) => Err(WorkflowError::Unavailable(format!(
            "template {} changed while the instance was being created; retry",
            new.template_id
        ))
        .into()),
        Ok(row) => {
            let instance: InstanceRow = from_json(row.instance)?;
            let steps: Vec<StepRow> = from_json(row.steps)?;
            let audit: Vec<AuditRow> = from_json(row.audit)?;
            Ok(instance.into_domain(steps, audit)?)
        }
        Err(e) if unique_violation_of(&e, ONE_ACTIVE_INSTANCE_INDEX) => {
            let existing = active_instance(conn, new).await?.unwrap_or_default();
            Err(WorkflowError::InstanceAlreadyActive { existing }.into())
        }
        Err(e) => Err(e),
    }
}

/// The open instance of `new`'s event on its entity, if any.
async fn active_instance(conn: &mut Conn, new: &NewInstance) -> Result<Option<i64>, TxError> {
    Ok(workflow_instances::table
        .filter(workflow_instances::event.eq(new.event.as_str()))
        .filter(workflow_instances::entity_type.eq(new.entity_type.as_str()))
        .filter(workflow_instances::entity_id.eq(new.entity_id.get()))
        .filter(workflow_instances::status.eq_any(ACTIVE))
        .select(workflow_instances::id)
        .first(conn)
        .await
        .optional()?)
}

pub(super) async fn instance(store: &PgStore, id: InstanceId) -> Result<Instance, WorkflowError> {
    store
        .with_conn(async |conn| {
            // Three reads, pipelined, in one snapshot: a decision committing meanwhile is seen
            // either entirely or not at all.
            conn.build_transaction()
                .read_only()
                .repeatable_read()
                .run::<_, TxError, _>(async |conn| read_instance(conn, id).await)
                .await
        })
        .await
}

/// The instance with its steps and audit; the three reads are pipelined (one round trip).
async fn read_instance(conn: &mut Conn, id: InstanceId) -> Result<Instance, TxError> {
    let shared: &AsyncPgConnection = conn;
    let instance = workflow_instances::table
        .find(id.get())
        .select(InstanceRow::as_select())
        .load(&mut &*shared);
    let steps = workflow_instance_steps::table
        .filter(workflow_instance_steps::instance_id.eq(id.get()))
        .order(workflow_instance_steps::step_order)
        .select(StepRow::as_select())
        .load(&mut &*shared);
    let audit = workflow_audit_log::table
        .filter(workflow_audit_log::instance_id.eq(id.get()))
        .order(workflow_audit_log::id)
        .select(AuditRow::as_select())
        .load(&mut &*shared);
    let (instance, steps, audit) = futures_util::future::try_join3(instance, steps, audit).await?;
    let row = instance
        .into_iter()
        .next()
        .ok_or_else(|| WorkflowError::not_found(format!("instance {id}")))?;
    Ok(row.into_domain(steps, audit)?)
}

#[derive(QueryableByName)]
struct CreatedRow {
    #[diesel(sql_type = Nullable<Jsonb>)]
    instance: Option<serde_json::Value>,
    #[diesel(sql_type = Nullable<Jsonb>)]
    steps: Option<serde_json::Value>,
    #[diesel(sql_type = Nullable<Jsonb>)]
    audit: Option<serde_json::Value>,
}

/// Reads rows the statement returned as JSON.
fn from_json<T: serde::de::DeserializeOwned>(
    value: Option<serde_json::Value>,
) -> Result<T, TxError> {
    let value = value.ok_or_else(|| WorkflowError::internal("statement returned no row data"))?;
    serde_json::from_value(value)
        .map_err(|e| WorkflowError::internal_from("unreadable row data", e).into())
}

/// Binds of [`CREATE_INSTANCE_SQL`].
struct CreateInstance {
    template_id: i64,
    template_version: i32,
    event: String,
    entity_type: String,
    entity_id: i64,
    initiated_by: i64,
    status: &'static str,
    context: Option<serde_json::Value>,
    created_at: DateTime<Utc>,
    completed_at: Option<DateTime<Utc>>,
    step_orders: Vec<i32>,
    step_names: Vec<String>,
    step_users: Vec<Option<i64>>,
    step_roles: Vec<Option<String>>,
    /// Each step's snapshot as an array literal: arrays of arrays can't be unnested per row.
    step_eligible: Vec<String>,
    step_statuses: Vec<&'static str>,
    step_activated_at: Vec<Option<DateTime<Utc>>>,
    step_quorums: Vec<i32>,
    step_due_in: Vec<Option<String>>,
    step_on_overdue: Vec<Option<String>>,
    step_escalate_users: Vec<Option<i64>>,
    step_escalate_roles: Vec<Option<String>>,
    step_due_at: Vec<Option<DateTime<Utc>>>,
    audit_step_orders: Vec<Option<i32>>,
    audit_actions: Vec<&'static str>,
    audit_actors: Vec<Option<i64>>,
    audit_comments: Vec<Option<String>>,
    audit_at: Vec<DateTime<Utc>>,
    audit_hashes: Vec<Vec<u8>>,
}

impl CreateInstance {
    fn new(new: &NewInstance) -> Result<Self, WorkflowError> {
        let (step_users, step_roles) = new
            .steps
            .iter()
            .map(|s| approver_columns(&s.approver))
            .unzip();
        let dues: Vec<DueColumns> = new
            .steps
            .iter()
            .map(|s| DueColumns::of(s.due.as_ref()))
            .collect();
        // A new trail starts its own chain: nothing to read first.
        let hashes = audit_chain::for_new_instance(new)?;
        Ok(Self {
            template_id: new.template_id.get(),
            template_version: new.template_version,
            event: new.event.to_string(),
            entity_type: new.entity_type.to_string(),
            entity_id: new.entity_id.get(),
            initiated_by: new.initiated_by.get(),
            status: new.status.as_str(),
            context: new.context.clone(),
            created_at: new.created_at,
            completed_at: new.completed_at,
            step_orders: new.steps.iter().map(|s| s.step_order).collect(),
            step_names: new.steps.iter().map(|s| s.name.clone()).collect(),
            step_users,
            step_roles,
            step_eligible: new
                .steps
                .iter()
                .map(|s| {
                    let ids: Vec<String> =
                        s.eligible_user_ids.iter().map(|u| u.to_string()).collect();
                    format!("{{{}}}", ids.join(","))
                })
                .collect(),
            step_statuses: new.steps.iter().map(|s| s.status.as_str()).collect(),
            step_activated_at: new.steps.iter().map(|s| s.activated_at).collect(),
            step_quorums: new
                .steps
                .iter()
                .map(|s| i32::try_from(s.quorum).unwrap_or(i32::MAX))
                .collect(),
            step_due_in: dues.iter().map(|d| d.due_in.clone()).collect(),
            step_on_overdue: dues.iter().map(|d| d.on_overdue.clone()).collect(),
            step_escalate_users: dues.iter().map(|d| d.escalate_to_user_id).collect(),
            step_escalate_roles: dues.iter().map(|d| d.escalate_to_role.clone()).collect(),
            step_due_at: new.steps.iter().map(|s| s.due_at).collect(),
            audit_step_orders: new.audit.iter().map(|a| a.step_order).collect(),
            audit_actions: new.audit.iter().map(|a| a.action.as_str()).collect(),
            audit_actors: new
                .audit
                .iter()
                .map(|a| a.actor_user_id.map(UserId::get))
                .collect(),
            audit_comments: new.audit.iter().map(|a| a.comment.clone()).collect(),
            audit_at: new.audit.iter().map(|a| a.at).collect(),
            audit_hashes: hashes.iter().map(|h| h.as_bytes().to_vec()).collect(),
        })
    }
}

impl StaticStatement for CreateInstance {
    const SQL: &'static str = CREATE_INSTANCE_SQL;

    fn bind<'b>(&'b self, n: usize, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        match n {
            1 => out.push_bind_param::<BigInt, _>(&self.template_id),
            2 => out.push_bind_param::<Integer, _>(&self.template_version),
            3 => out.push_bind_param::<Text, _>(&self.event),
            4 => out.push_bind_param::<Text, _>(&self.entity_type),
            5 => out.push_bind_param::<BigInt, _>(&self.entity_id),
            6 => out.push_bind_param::<BigInt, _>(&self.initiated_by),
            7 => out.push_bind_param::<Text, _>(&self.status),
            8 => out.push_bind_param::<Nullable<Jsonb>, _>(&self.context),
            9 => out.push_bind_param::<Timestamptz, _>(&self.created_at),
            10 => out.push_bind_param::<Array<Integer>, _>(&self.step_orders),
            11 => out.push_bind_param::<Array<Text>, _>(&self.step_names),
            12 => out.push_bind_param::<Array<Nullable<BigInt>>, _>(&self.step_users),
            13 => out.push_bind_param::<Array<Nullable<Text>>, _>(&self.step_roles),
            14 => out.push_bind_param::<Array<Text>, _>(&self.step_eligible),
            15 => out.push_bind_param::<Array<Text>, _>(&self.step_statuses),
            16 => out.push_bind_param::<Array<Nullable<Timestamptz>>, _>(&self.step_activated_at),
            17 => out.push_bind_param::<Array<Nullable<Integer>>, _>(&self.audit_step_orders),
            18 => out.push_bind_param::<Array<Text>, _>(&self.audit_actions),
            19 => out.push_bind_param::<Array<Nullable<BigInt>>, _>(&self.audit_actors),
            20 => out.push_bind_param::<Array<Nullable<Text>>, _>(&self.audit_comments),
            21 => out.push_bind_param::<Array<Timestamptz>, _>(&self.audit_at),
            22 => out.push_bind_param::<Array<Bytea>, _>(&self.audit_hashes),
            23 => out.push_bind_param::<Array<Integer>, _>(&self.step_quorums),
            24 => out.push_bind_param::<Nullable<Timestamptz>, _>(&self.completed_at),
            25 => out.push_bind_param::<Array<Nullable<Text>>, _>(&self.step_due_in),
            26 => out.push_bind_param::<Array<Nullable<Text>>, _>(&self.step_on_overdue),
            27 => out.push_bind_param::<Array<Nullable<BigInt>>, _>(&self.step_escalate_users),
            28 => out.push_bind_param::<Array<Nullable<Text>>, _>(&self.step_escalate_roles),
            29 => out.push_bind_param::<Array<Nullable<Timestamptz>>, _>(&self.step_due_at),
            other => Err(no_such_placeholder(other)),
        }
    }
}
