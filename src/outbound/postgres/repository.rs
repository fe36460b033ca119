//! The `WorkflowRepository` port on PostgreSQL.
//!
//! Round trips are counted here, because they are most of a request's cost:
//! - a trigger's insert is one statement (instance, steps and audit in data-modifying CTEs,
//!   guarded by a share lock on the template's current version);
//! - a decision is `BEGIN`; the two row-lock reads, pipelined (sent together, executed in order:
//!   the instance row, then its step rows); one statement that writes the steps, the instance,
//!   the audit entries and the outbox rows and returns the whole audit trail; `COMMIT`.
//!   Four round trips, five statements.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Integer, Jsonb, Nullable, Text, Timestamptz};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};

use diesel::pg::Pg;
use diesel::query_builder::AstPass;

use super::rows::{
    AuditRow, InstanceRow, PendingRow, StepRow, TemplateRow, TemplateStepRow, approver_columns,
};
use super::schema::{
    workflow_audit_log, workflow_callback_outbox, workflow_inbox, workflow_instance_steps,
    workflow_instances, workflow_template_steps, workflow_templates,
};
use super::statement::{Statement, StaticStatement, no_such_placeholder};
use super::{
    ACTIVE, Conn, ONE_ACTIVE_INSTANCE_INDEX, ONE_ACTIVE_TEMPLATE_INDEX, PgStore, TxError,
    unique_violation_of,
};
use crate::domain::WorkflowError;
use crate::domain::model::{
    EventName, Instance, InstanceId, NewInstance, OutboxItem, PendingStep, StepId, Template,
    TemplateId, TemplateUpdate, UserId,
};
use crate::domain::ports::{DecideFn, WorkflowRepository};

/// The trigger's write: one statement. Yields one row with the stored instance, steps and audit
/// as JSON, or a row of NULLs when the template is no longer at the version read (or inactive).
const CREATE_INSTANCE_SQL: &str = "\
WITH template AS (
    SELECT id FROM workflow_templates
    WHERE id = $1 AND version = $2 AND is_active
    FOR SHARE
), instance AS (
    INSERT INTO workflow_instances
        (template_id, template_version, event, entity_type, entity_id, initiated_by, status,
         context, created_at, updated_at)
    SELECT template.id, $2, $3, $4, $5, $6, $7, $8, $9, $9 FROM template
    RETURNING *
), steps AS (
    INSERT INTO workflow_instance_steps
        (instance_id, step_order, name, approver_user_id, approver_role, eligible_user_ids,
         status, activated_at)
    SELECT instance.id, v.step_order, v.name, v.approver_user_id, v.approver_role,
           v.eligible::bigint[], v.status, v.activated_at
    FROM instance,
         unnest($10::int4[], $11::text[], $12::int8[], $13::text[], $14::text[], $15::text[],
                $16::timestamptz[])
         AS v(step_order, name, approver_user_id, approver_role, eligible, status, activated_at)
    RETURNING *
), audit AS (
    INSERT INTO workflow_audit_log (instance_id, step_id, action, actor_user_id, comment, at)
    SELECT instance.id, steps.id, v.action, v.actor_user_id, v.comment, v.at
    FROM instance
    CROSS JOIN unnest($17::int4[], $18::text[], $19::int8[], $20::text[], $21::timestamptz[])
         WITH ORDINALITY AS v(step_order, action, actor_user_id, comment, at, n)
    LEFT JOIN steps ON steps.step_order = v.step_order
    ORDER BY v.n
    RETURNING *
)
SELECT (SELECT to_jsonb(instance) FROM instance) AS instance,
       (SELECT jsonb_agg(steps ORDER BY step_order) FROM steps) AS steps,
       (SELECT jsonb_agg(audit ORDER BY id) FROM audit) AS audit";

/// The decision's write, under the row locks: changed steps, the instance, audit and outbox in
/// one statement, answering with the instance's whole audit trail (old rows plus new).
const DECIDE_WRITE_SQL: &str = "\
WITH changed AS (
    UPDATE workflow_instance_steps AS s
    SET status = v.status, acted_by_user_id = v.acted_by_user_id, comment = v.comment,
        acted_at = v.acted_at, activated_at = v.activated_at
    FROM unnest($2::int8[], $3::text[], $4::int8[], $5::text[], $6::timestamptz[],
                $7::timestamptz[])
         AS v(id, status, acted_by_user_id, comment, acted_at, activated_at)
    WHERE s.id = v.id
    RETURNING s.id
), instance AS (
    UPDATE workflow_instances SET status = $8, updated_at = $9, completed_at = $10
    WHERE id = $1
    RETURNING id
), audit AS (
    INSERT INTO workflow_audit_log (instance_id, step_id, action, actor_user_id, comment, at)
    SELECT $1, v.step_id, v.action, v.actor_user_id, v.comment, v.at
    FROM unnest($11::int8[], $12::text[], $13::int8[], $14::text[], $15::timestamptz[])
         WITH ORDINALITY AS v(step_id, action, actor_user_id, comment, at, n)
    ORDER BY v.n
    RETURNING id, instance_id, step_id, action, actor_user_id, comment, at
), outbox AS (
    INSERT INTO workflow_callback_outbox (instance_id, kind, payload, created_at, due_at)
    SELECT $1, v.kind, v.payload, v.at, v.at
    FROM unnest($16::text[], $17::jsonb[], $18::timestamptz[]) AS v(kind, payload, at)
    RETURNING id
)
SELECT id, instance_id, step_id, action, actor_user_id, comment, at
FROM workflow_audit_log WHERE instance_id = $1
UNION ALL
SELECT id, instance_id, step_id, action, actor_user_id, comment, at FROM audit
ORDER BY id";

/// SKIP LOCKED: dispatchers in other processes claim other rows instead of waiting.
const CLAIM_CALLBACKS_SQL: &str = "\
UPDATE workflow_callback_outbox SET due_at = $2, attempts = attempts + 1
WHERE id IN (SELECT id FROM workflow_callback_outbox
             WHERE delivered_at IS NULL AND due_at <= $1
             ORDER BY due_at, id LIMIT $3
             FOR UPDATE SKIP LOCKED)
RETURNING id, attempts, payload";

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
    step_orders: Vec<i32>,
    step_names: Vec<String>,
    step_users: Vec<Option<i64>>,
    step_roles: Vec<Option<String>>,
    /// Each step's snapshot as an array literal: arrays of arrays can't be unnested per row.
    step_eligible: Vec<String>,
    step_statuses: Vec<&'static str>,
    step_activated_at: Vec<Option<DateTime<Utc>>>,
    audit_step_orders: Vec<Option<i32>>,
    audit_actions: Vec<&'static str>,
    audit_actors: Vec<Option<i64>>,
    audit_comments: Vec<Option<String>>,
    audit_at: Vec<DateTime<Utc>>,
}

impl CreateInstance {
    fn new(new: &NewInstance) -> Self {
        let (step_users, step_roles) = new
            .steps
            .iter()
            .map(|s| approver_columns(&s.approver))
            .unzip();
        Self {
            template_id: new.template_id.get(),
            template_version: new.template_version,
            event: new.event.to_string(),
            entity_type: new.entity_type.to_string(),
            entity_id: new.entity_id.get(),
            initiated_by: new.initiated_by.get(),
            status: new.status.as_str(),
            context: new.context.clone(),
            created_at: new.created_at,
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
            audit_step_orders: new.audit.iter().map(|a| a.step_order).collect(),
            audit_actions: new.audit.iter().map(|a| a.action.as_str()).collect(),
            audit_actors: new
                .audit
                .iter()
                .map(|a| a.actor_user_id.map(UserId::get))
                .collect(),
            audit_comments: new.audit.iter().map(|a| a.comment.clone()).collect(),
            audit_at: new.audit.iter().map(|a| a.at).collect(),
        }
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
            other => Err(no_such_placeholder(other)),
        }
    }
}

/// Binds of [`DECIDE_WRITE_SQL`].
struct DecideWrite {
    instance_id: i64,
    step_ids: Vec<i64>,
    step_statuses: Vec<&'static str>,
    step_actors: Vec<Option<i64>>,
    step_comments: Vec<Option<String>>,
    step_acted_at: Vec<Option<DateTime<Utc>>>,
    step_activated_at: Vec<Option<DateTime<Utc>>>,
    instance_status: &'static str,
    updated_at: DateTime<Utc>,
    completed_at: Option<DateTime<Utc>>,
    audit_step_ids: Vec<Option<i64>>,
    audit_actions: Vec<&'static str>,
    audit_actors: Vec<Option<i64>>,
    audit_comments: Vec<Option<String>>,
    audit_at: Vec<DateTime<Utc>>,
    callback_kinds: Vec<&'static str>,
    callback_payloads: Vec<serde_json::Value>,
    callback_at: Vec<DateTime<Utc>>,
}

impl StaticStatement for DecideWrite {
    const SQL: &'static str = DECIDE_WRITE_SQL;

    fn bind<'b>(&'b self, n: usize, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        match n {
            1 => out.push_bind_param::<BigInt, _>(&self.instance_id),
            2 => out.push_bind_param::<Array<BigInt>, _>(&self.step_ids),
            3 => out.push_bind_param::<Array<Text>, _>(&self.step_statuses),
            4 => out.push_bind_param::<Array<Nullable<BigInt>>, _>(&self.step_actors),
            5 => out.push_bind_param::<Array<Nullable<Text>>, _>(&self.step_comments),
            6 => out.push_bind_param::<Array<Nullable<Timestamptz>>, _>(&self.step_acted_at),
            7 => out.push_bind_param::<Array<Nullable<Timestamptz>>, _>(&self.step_activated_at),
            8 => out.push_bind_param::<Text, _>(&self.instance_status),
            9 => out.push_bind_param::<Timestamptz, _>(&self.updated_at),
            10 => out.push_bind_param::<Nullable<Timestamptz>, _>(&self.completed_at),
            11 => out.push_bind_param::<Array<Nullable<BigInt>>, _>(&self.audit_step_ids),
            12 => out.push_bind_param::<Array<Text>, _>(&self.audit_actions),
            13 => out.push_bind_param::<Array<Nullable<BigInt>>, _>(&self.audit_actors),
            14 => out.push_bind_param::<Array<Nullable<Text>>, _>(&self.audit_comments),
            15 => out.push_bind_param::<Array<Timestamptz>, _>(&self.audit_at),
            16 => out.push_bind_param::<Array<Text>, _>(&self.callback_kinds),
            17 => out.push_bind_param::<Array<Jsonb>, _>(&self.callback_payloads),
            18 => out.push_bind_param::<Array<Timestamptz>, _>(&self.callback_at),
            other => Err(no_such_placeholder(other)),
        }
    }
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

#[derive(QueryableByName)]
struct ClaimedRow {
    #[diesel(sql_type = BigInt)]
    id: i64,
    #[diesel(sql_type = Integer)]
    attempts: i32,
    #[diesel(sql_type = Jsonb)]
    payload: serde_json::Value,
}

fn from_json<T: serde::de::DeserializeOwned>(
    value: Option<serde_json::Value>,
) -> Result<T, TxError> {
    let value = value
        .ok_or_else(|| WorkflowError::Internal("statement returned no row data".to_owned()))?;
    serde_json::from_value(value)
        .map_err(|e| WorkflowError::Internal(format!("unreadable row data: {e}")).into())
}

/// One template and its steps, in one query.
async fn load_template(
    conn: &mut Conn,
    filter: TemplateFilter<'_>,
) -> Result<Option<Template>, TxError> {
    let query = workflow_templates::table
        .inner_join(workflow_template_steps::table)
        .order(workflow_template_steps::step_order)
        .select((TemplateRow::as_select(), TemplateStepRow::as_select()))
        .into_boxed();
    let query = match filter {
        TemplateFilter::Id(id) => query.filter(workflow_templates::id.eq(id.get())),
        TemplateFilter::ActiveFor(event) => query
            .filter(workflow_templates::event.eq(event.as_str()))
            .filter(workflow_templates::is_active),
    };
    let rows: Vec<(TemplateRow, TemplateStepRow)> = query.load(conn).await?;
    let mut rows = rows.into_iter();
    let Some((template, first_step)) = rows.next() else {
        return Ok(None);
    };
    let steps = std::iter::once(first_step)
        .chain(rows.map(|(_, step)| step))
        .collect();
    Ok(Some(template.into_domain(steps)?))
}

enum TemplateFilter<'a> {
    Id(TemplateId),
    ActiveFor(&'a EventName),
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

impl WorkflowRepository for PgStore {
    async fn active_template(&self, event: &EventName) -> Result<Option<Template>, WorkflowError> {
        self.with_conn(async |conn| load_template(conn, TemplateFilter::ActiveFor(event)).await)
            .await
    }

    async fn template(&self, id: TemplateId) -> Result<Template, WorkflowError> {
        self.with_conn(async |conn| load_template(conn, TemplateFilter::Id(id)).await)
            .await?
            .ok_or_else(|| WorkflowError::not_found(format!("template {id}")))
    }

    async fn update_template(
        &self,
        id: TemplateId,
        update: TemplateUpdate,
    ) -> Result<Template, WorkflowError> {
        self.with_conn(async |conn| {
            let result = conn
                .transaction::<_, TxError, _>(async |conn| {
                    // The exclusive lock makes a concurrent trigger (which share-locks the
                    // template) either finish first, and then be seen below, or fail its
                    // version check afterwards.
                    let row = workflow_templates::table
                        .find(id.get())
                        .select(TemplateRow::as_select())
                        .for_update()
                        .first(conn)
                        .await
                        .optional()?
                        .ok_or_else(|| WorkflowError::not_found(format!("template {id}")))?;
                    let in_use: bool = diesel::select(diesel::dsl::exists(
                        workflow_instances::table
                            .filter(workflow_instances::template_id.eq(id.get()))
                            .filter(workflow_instances::status.eq_any(ACTIVE)),
                    ))
                    .get_result(conn)
                    .await?;
                    if in_use {
                        return Err(WorkflowError::TemplateInUse { template: id.get() }.into());
                    }
                    diesel::update(workflow_templates::table.find(id.get()))
                        .set((
                            workflow_templates::name.eq(update.name.as_ref().unwrap_or(&row.name)),
                            workflow_templates::is_active
                                .eq(update.is_active.unwrap_or(row.is_active)),
                            workflow_templates::version.eq(row.version + 1),
                        ))
                        .execute(conn)
                        .await?;
                    if let Some(steps) = &update.steps {
                        diesel::delete(
                            workflow_template_steps::table
                                .filter(workflow_template_steps::template_id.eq(id.get())),
                        )
                        .execute(conn)
                        .await?;
                        let rows: Vec<_> =
                            steps.iter().map(|s| TemplateStepRow::new(id, s)).collect();
                        diesel::insert_into(workflow_template_steps::table)
                            .values(&rows)
                            .execute(conn)
                            .await?;
                    }
                    load_template(conn, TemplateFilter::Id(id))
                        .await?
                        .ok_or_else(|| {
                            WorkflowError::Internal(format!("template {id} vanished")).into()
                        })
                })
                .await;
            match result {
                Err(e) if unique_violation_of(&e, ONE_ACTIVE_TEMPLATE_INDEX) => {
                    Err(WorkflowError::validation(
                        "is_active",
                        "another template is already active for this event",
                    )
                    .into())
                }
                other => other,
            }
        })
        .await
    }

    async fn create_instance(&self, new: NewInstance) -> Result<Instance, WorkflowError> {
        self.with_conn(async |conn| {
            let result = Statement(CreateInstance::new(&new))
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
                    let existing: i64 = workflow_instances::table
                        .filter(workflow_instances::event.eq(new.event.as_str()))
                        .filter(workflow_instances::entity_type.eq(new.entity_type.as_str()))
                        .filter(workflow_instances::entity_id.eq(new.entity_id.get()))
                        .filter(workflow_instances::status.eq_any(ACTIVE))
                        .select(workflow_instances::id)
                        .first(conn)
                        .await
                        .optional()?
                        .unwrap_or_default();
                    Err(WorkflowError::InstanceAlreadyActive { existing }.into())
                }
                Err(e) => Err(e),
            }
        })
        .await
    }

    async fn instance(&self, id: InstanceId) -> Result<Instance, WorkflowError> {
        self.with_conn(async |conn| {
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

    async fn decide(&self, step: StepId, decide: DecideFn) -> Result<Instance, WorkflowError> {
        self.with_conn(async |conn| {
            conn.transaction::<_, TxError, _>(async |conn| {
                // Lock order: the instance row, then its step rows. Both reads are sent at once;
                // the server runs them in order, so every decision on an instance queues on the
                // instance lock and the re-check below sees the winner's writes.
                let (instances, steps) = {
                    let shared: &AsyncPgConnection = conn;
                    // The step's instance id, as a subquery (aliased: the step lock reads the
                    // same table).
                    let decided_step = diesel::alias!(workflow_instance_steps as decided_step);
                    let owner = || {
                        decided_step
                            .filter(
                                decided_step
                                    .field(workflow_instance_steps::id)
                                    .eq(step.get()),
                            )
                            .select(decided_step.field(workflow_instance_steps::instance_id))
                            .single_value()
                    };
                    let lock_instance = workflow_instances::table
                        .filter(workflow_instances::id.nullable().eq(owner()))
                        .select(InstanceRow::as_select())
                        .for_update()
                        .load(&mut &*shared);
                    let lock_steps = workflow_instance_steps::table
                        .filter(workflow_instance_steps::instance_id.nullable().eq(owner()))
                        .order(workflow_instance_steps::step_order)
                        .select(StepRow::as_select())
                        .for_update()
                        .load(&mut &*shared);
                    futures_util::future::try_join(lock_instance, lock_steps).await?
                };
                let row = instances
                    .into_iter()
                    .next()
                    .ok_or_else(|| WorkflowError::not_found(format!("step {step}")))?;
                let instance_id = row.id;
                let mut instance = row.into_domain(steps, Vec::new())?;
                let decided = decide(&instance)?;
                crate::domain::machine::apply(&mut instance, &decided);

                let changed = &decided.changed_steps;
                let audit_step_ids = decided
                    .audit
                    .iter()
                    .map(|a| Ok(instance.audit_step_id(a)?.map(StepId::get)))
                    .collect::<Result<Vec<_>, WorkflowError>>()?;
                let payloads = decided
                    .callbacks
                    .iter()
                    .map(|event| {
                        serde_json::to_value(event)
                            .map_err(|e| TxError::from(WorkflowError::Internal(e.to_string())))
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                let write = DecideWrite {
                    instance_id,
                    step_ids: changed.iter().map(|s| s.id.get()).collect(),
                    step_statuses: changed.iter().map(|s| s.status.as_str()).collect(),
                    step_actors: changed
                        .iter()
                        .map(|s| s.acted_by_user_id.map(UserId::get))
                        .collect(),
                    step_comments: changed.iter().map(|s| s.comment.clone()).collect(),
                    step_acted_at: changed.iter().map(|s| s.acted_at).collect(),
                    step_activated_at: changed.iter().map(|s| s.activated_at).collect(),
                    instance_status: decided.instance_status.as_str(),
                    updated_at: decided.updated_at,
                    completed_at: decided.completed_at,
                    audit_step_ids,
                    audit_actions: decided.audit.iter().map(|a| a.action.as_str()).collect(),
                    audit_actors: decided
                        .audit
                        .iter()
                        .map(|a| a.actor_user_id.map(UserId::get))
                        .collect(),
                    audit_comments: decided.audit.iter().map(|a| a.comment.clone()).collect(),
                    audit_at: decided.audit.iter().map(|a| a.at).collect(),
                    callback_kinds: decided.callbacks.iter().map(|c| c.kind.as_str()).collect(),
                    callback_payloads: payloads,
                    callback_at: decided.callbacks.iter().map(|c| c.at).collect(),
                };
                let audit: Vec<AuditRow> = Statement(write).load(conn).await?;
                instance.audit = audit
                    .into_iter()
                    .map(AuditRow::into_domain)
                    .collect::<Result<_, _>>()?;
                Ok(instance)
            })
            .await
        })
        .await
    }

    async fn pending_steps(
        &self,
        user: UserId,
        limit: u32,
    ) -> Result<Vec<PendingStep>, WorkflowError> {
        self.with_conn(async |conn| {
            // The inbox table holds one row per (eligible user, awaiting step), keyed by user and
            // activation time: a user's page is one index range scan.
            let rows: Vec<PendingRow> = workflow_inbox::table
                .inner_join(workflow_instance_steps::table.inner_join(workflow_instances::table))
                .filter(workflow_inbox::user_id.eq(user.get()))
                .order((workflow_inbox::activated_at, workflow_inbox::step_id))
                .limit(i64::from(limit))
                .select((
                    workflow_instance_steps::id,
                    workflow_instance_steps::step_order,
                    workflow_instance_steps::name,
                    workflow_instance_steps::approver_user_id,
                    workflow_instance_steps::approver_role,
                    workflow_instance_steps::activated_at,
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

    async fn claim_callbacks(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<OutboxItem>, WorkflowError> {
        self.with_conn(async |conn| {
            let rows: Vec<ClaimedRow> = diesel::sql_query(CLAIM_CALLBACKS_SQL)
                .bind::<Timestamptz, _>(now)
                .bind::<Timestamptz, _>(lease_until)
                .bind::<BigInt, _>(i64::from(limit))
                .load(conn)
                .await?;
            let mut items = Vec::with_capacity(rows.len());
            for row in rows {
                match serde_json::from_value(row.payload) {
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

    async fn mark_callback_delivered(
        &self,
        id: i64,
        at: DateTime<Utc>,
    ) -> Result<(), WorkflowError> {
        self.with_conn(async |conn| {
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

    async fn mark_callback_failed(
        &self,
        id: i64,
        error: String,
        retry_at: DateTime<Utc>,
    ) -> Result<(), WorkflowError> {
        self.with_conn(async |conn| {
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

    async fn health(&self) -> Result<(), WorkflowError> {
        self.with_conn(async |conn| {
            diesel::sql_query("SELECT 1").execute(conn).await?;
            Ok(())
        })
        .await
    }
}
