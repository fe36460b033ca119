//! The PostgreSQL adapter for `WorkflowRepository` and `RoleResolver`: diesel-async on a bb8
//! pool, schema from the embedded migrations.
//!
//! Each use case is one transaction. A decision locks its instance row, then the instance's step
//! rows, with `SELECT .. FOR UPDATE` (always in that order, so concurrent decisions queue instead
//! of deadlocking) and re-runs the state machine on what it read under the lock. Database
//! failures become domain errors here: the one-active-instance unique violation becomes
//! `InstanceAlreadyActive`; a lost connection, a pool time-out or a statement that outlives
//! the operation deadline becomes `Unavailable`.

mod rows;
pub mod schema;

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use diesel::sql_types::{BigInt, Integer, Jsonb, Timestamptz};
use diesel_async::pooled_connection::bb8::{Pool, RunError};
use diesel_async::pooled_connection::{AsyncDieselConnectionManager, PoolError};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

use self::rows::{
    AuditRow, InstanceRow, NewAuditRow, NewInstanceRow, NewStepRow, StepRow, TemplateRow,
    TemplateStepRow, approver_columns,
};
use self::schema::{
    bookings, commissions, projects, roles, units, user_roles, users, workflow_audit_log,
    workflow_callback_outbox, workflow_instance_steps, workflow_instances, workflow_template_steps,
    workflow_templates,
};
use crate::demo::DemoData;
use crate::domain::WorkflowError;
use crate::domain::model::{
    Approver, EntityId, EntityType, EventName, Instance, InstanceId, NewAuditEntry, NewInstance,
    OutboxItem, PendingStep, RoleName, StepId, StepStatus, Template, TemplateId, TemplateUpdate,
    UserId,
};
use crate::domain::ports::{DecideFn, RoleResolver, WorkflowRepository};

/// The schema, compiled into the binary.
pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations");

const ONE_ACTIVE_INSTANCE_INDEX: &str = "workflow_instances_one_active";
const ONE_ACTIVE_TEMPLATE_INDEX: &str = "workflow_templates_one_active_per_event";
const ACTIVE: [&str; 2] = ["pending", "in_progress"];

/// Pool and time-out settings.
#[derive(Debug, Clone)]
pub struct PgConfig {
    /// Most connections held at once.
    pub pool_size: u32,
    /// How long a request waits for a free connection before it is answered 503.
    pub connect_timeout: Duration,
    /// How long one operation (including lock waits) may take before it is answered 503.
    pub operation_timeout: Duration,
}

impl Default for PgConfig {
    fn default() -> Self {
        Self {
            pool_size: 16,
            connect_timeout: Duration::from_secs(5),
            operation_timeout: Duration::from_secs(30),
        }
    }
}

/// Failure inside a transaction: a database error, or a domain refusal that rolls it back.
#[derive(Debug)]
enum TxError {
    Db(DieselError),
    Domain(WorkflowError),
}

impl From<DieselError> for TxError {
    fn from(e: DieselError) -> Self {
        Self::Db(e)
    }
}

impl From<WorkflowError> for TxError {
    fn from(e: WorkflowError) -> Self {
        Self::Domain(e)
    }
}

impl From<TxError> for WorkflowError {
    fn from(e: TxError) -> Self {
        match e {
            TxError::Db(e) => db_error(e),
            TxError::Domain(e) => e,
        }
    }
}

fn db_error(e: DieselError) -> WorkflowError {
    match e {
        DieselError::DatabaseError(DatabaseErrorKind::UnableToSendCommand, info)
        | DieselError::DatabaseError(DatabaseErrorKind::ClosedConnection, info) => {
            WorkflowError::Unavailable(info.message().to_owned())
        }
        DieselError::BrokenTransactionManager => {
            WorkflowError::Unavailable("connection lost mid-transaction".to_owned())
        }
        other => WorkflowError::Internal(other.to_string()),
    }
}

fn pool_error(e: RunError) -> WorkflowError {
    match e {
        RunError::TimedOut => {
            WorkflowError::Unavailable("timed out waiting for a connection".to_owned())
        }
        RunError::User(PoolError::ConnectionError(e)) => WorkflowError::Unavailable(e.to_string()),
        RunError::User(PoolError::QueryError(e)) => db_error(e),
    }
}

fn unique_violation_of(e: &TxError, index: &str) -> bool {
    matches!(e, TxError::Db(DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, info))
        if info.constraint_name() == Some(index))
}

/// Applies pending migrations; returns the versions applied. Runs on a blocking thread because
/// diesel's migration harness is synchronous.
pub async fn run_migrations(database_url: &str) -> Result<Vec<String>, WorkflowError> {
    let url = database_url.to_owned();
    tokio::task::spawn_blocking(move || {
        type Wrapper =
            diesel_async::async_connection_wrapper::AsyncConnectionWrapper<AsyncPgConnection>;
        let mut conn = <Wrapper as diesel::Connection>::establish(&url).map_err(|e| {
            WorkflowError::Unavailable(format!("can't connect to the database: {e}"))
        })?;
        let applied = conn
            .run_pending_migrations(MIGRATIONS)
            .map_err(|e| WorkflowError::Internal(format!("migration failed: {e}")))?;
        Ok(applied.iter().map(|v| v.to_string()).collect())
    })
    .await
    .map_err(|e| WorkflowError::Internal(format!("migration task failed: {e}")))?
}

/// The PostgreSQL store.
pub struct PgStore {
    pool: Pool<AsyncPgConnection>,
    operation_timeout: Duration,
}

type Conn = AsyncPgConnection;

impl PgStore {
    /// A pool on `database_url`. Connections are made lazily, so this succeeds while the
    /// database is down; requests then get `Unavailable` until it is back.
    pub async fn connect(database_url: &str, config: &PgConfig) -> Result<Self, WorkflowError> {
        let manager = AsyncDieselConnectionManager::<AsyncPgConnection>::new(database_url);
        let pool = Pool::builder()
            .max_size(config.pool_size)
            .min_idle(Some(0))
            .connection_timeout(config.connect_timeout)
            // A broken connection is detected when a query fails on it and it is then dropped;
            // a ping on every checkout would add a round trip to every request.
            .test_on_check_out(false)
            .build(manager)
            .await
            .map_err(|e| WorkflowError::Unavailable(e.to_string()))?;
        Ok(Self {
            pool,
            operation_timeout: config.operation_timeout,
        })
    }

    /// Runs `work` on a pooled connection within the operation deadline.
    async fn with_conn<T, F>(&self, work: F) -> Result<T, WorkflowError>
    where
        F: for<'c> AsyncFnOnce(&'c mut Conn) -> Result<T, TxError>,
    {
        let run = async {
            let mut conn = self.pool.get().await.map_err(pool_error)?;
            work(&mut conn).await.map_err(WorkflowError::from)
        };
        tokio::time::timeout(self.operation_timeout, run)
            .await
            .unwrap_or_else(|_| Err(WorkflowError::Unavailable("operation timed out".to_owned())))
    }

    /// Loads the demo's users, roles, templates and property records. Idempotent: returns
    /// `true` if the store had no users before (a fresh store), `false` if it was seeded.
    pub async fn load_reference_data(&self, demo: &DemoData) -> Result<bool, WorkflowError> {
        self.with_conn(async |conn| {
            conn.transaction::<_, TxError, _>(async |conn| {
                let fresh = users::table.count().get_result::<i64>(conn).await? == 0;
                let role_rows: Vec<_> = demo.roles.iter().map(|r| roles::name.eq(r.as_str())).collect();
                diesel::insert_into(roles::table).values(&role_rows).on_conflict_do_nothing().execute(conn).await?;
                for user in &demo.users {
                    diesel::insert_into(users::table)
                        .values((users::id.eq(user.id.get()), users::name.eq(user.name)))
                        .on_conflict_do_nothing()
                        .execute(conn)
                        .await?;
                    let memberships: Vec<_> = user
                        .roles
                        .iter()
                        .map(|r| (user_roles::role.eq(r.as_str()), user_roles::user_id.eq(user.id.get())))
                        .collect();
                    diesel::insert_into(user_roles::table).values(&memberships).on_conflict_do_nothing().execute(conn).await?;
                }
                for template in &demo.templates {
                    let inserted = diesel::insert_into(workflow_templates::table)
                        .values((
                            workflow_templates::id.eq(template.id.get()),
                            workflow_templates::name.eq(&template.name),
                            workflow_templates::event.eq(template.event.as_str()),
                            workflow_templates::entity_type.eq(template.entity_type.as_str()),
                            workflow_templates::version.eq(template.version),
                            workflow_templates::is_active.eq(template.is_active),
                        ))
                        .on_conflict_do_nothing()
                        .execute(conn)
                        .await?;
                    if inserted == 1 {
                        let steps: Vec<_> = template.steps.iter().map(|s| TemplateStepRow::new(template.id, s)).collect();
                        diesel::insert_into(workflow_template_steps::table).values(&steps).execute(conn).await?;
                    }
                }
                diesel::sql_query(
                    "SELECT setval('workflow_templates_id_seq', GREATEST((SELECT max(id) FROM workflow_templates), 1))",
                )
                .execute(conn)
                .await?;
                for p in &demo.projects {
                    diesel::insert_into(projects::table)
                        .values((projects::id.eq(p.id), projects::name.eq(p.name)))
                        .on_conflict_do_nothing()
                        .execute(conn)
                        .await?;
                }
                for u in &demo.units {
                    diesel::insert_into(units::table)
                        .values((
                            units::id.eq(u.id),
                            units::project_id.eq(u.project_id),
                            units::code.eq(&u.code),
                            units::price_cents.eq(u.price_cents),
                        ))
                        .on_conflict_do_nothing()
                        .execute(conn)
                        .await?;
                }
                for b in &demo.bookings {
                    diesel::insert_into(bookings::table)
                        .values((
                            bookings::id.eq(b.id),
                            bookings::unit_id.eq(b.unit_id),
                            bookings::customer_name.eq(b.customer_name),
                            bookings::status.eq(b.status),
                        ))
                        .on_conflict_do_nothing()
                        .execute(conn)
                        .await?;
                }
                for c in &demo.commissions {
                    diesel::insert_into(commissions::table)
                        .values((
                            commissions::id.eq(c.id),
                            commissions::booking_id.eq(c.booking_id),
                            commissions::agent_user_id.eq(c.agent_user_id.get()),
                            commissions::amount_cents.eq(c.amount_cents),
                            commissions::status.eq(c.status),
                        ))
                        .on_conflict_do_nothing()
                        .execute(conn)
                        .await?;
                }
                Ok(fresh)
            })
            .await
        })
        .await
    }

    /// Adds a user (or renames one).
    pub async fn add_user(&self, id: UserId, name: &str) -> Result<(), WorkflowError> {
        self.with_conn(async |conn| {
            diesel::insert_into(users::table)
                .values((users::id.eq(id.get()), users::name.eq(name)))
                .on_conflict(users::id)
                .do_update()
                .set(users::name.eq(name))
                .execute(conn)
                .await?;
            Ok(())
        })
        .await
    }

    /// Replaces the roles `user` holds (roles are created as needed).
    pub async fn set_user_roles(
        &self,
        user: UserId,
        roles: &[RoleName],
    ) -> Result<(), WorkflowError> {
        self.with_conn(async |conn| {
            conn.transaction::<_, TxError, _>(async |conn| {
                diesel::delete(user_roles::table.filter(user_roles::user_id.eq(user.get())))
                    .execute(conn)
                    .await?;
                for role in roles {
                    diesel::insert_into(roles::table)
                        .values(roles::name.eq(role.as_str()))
                        .on_conflict_do_nothing()
                        .execute(conn)
                        .await?;
                    diesel::insert_into(user_roles::table)
                        .values((
                            user_roles::role.eq(role.as_str()),
                            user_roles::user_id.eq(user.get()),
                        ))
                        .execute(conn)
                        .await?;
                }
                Ok(())
            })
            .await
        })
        .await
    }

    /// Adds a template as given (its id included).
    pub async fn put_template(&self, template: &Template) -> Result<(), WorkflowError> {
        self.with_conn(async |conn| {
            conn.transaction::<_, TxError, _>(async |conn| {
                diesel::insert_into(workflow_templates::table)
                    .values((
                        workflow_templates::id.eq(template.id.get()),
                        workflow_templates::name.eq(&template.name),
                        workflow_templates::event.eq(template.event.as_str()),
                        workflow_templates::entity_type.eq(template.entity_type.as_str()),
                        workflow_templates::version.eq(template.version),
                        workflow_templates::is_active.eq(template.is_active),
                    ))
                    .execute(conn)
                    .await?;
                let steps: Vec<_> = template
                    .steps
                    .iter()
                    .map(|s| TemplateStepRow::new(template.id, s))
                    .collect();
                diesel::insert_into(workflow_template_steps::table)
                    .values(&steps)
                    .execute(conn)
                    .await?;
                Ok(())
            })
            .await
        })
        .await
    }
}

async fn load_template_steps(
    conn: &mut Conn,
    id: i64,
) -> Result<Vec<TemplateStepRow>, DieselError> {
    workflow_template_steps::table
        .filter(workflow_template_steps::template_id.eq(id))
        .order(workflow_template_steps::step_order)
        .select(TemplateStepRow::as_select())
        .load(conn)
        .await
}

async fn load_audit(conn: &mut Conn, instance: i64) -> Result<Vec<AuditRow>, DieselError> {
    workflow_audit_log::table
        .filter(workflow_audit_log::instance_id.eq(instance))
        .order(workflow_audit_log::id)
        .select(AuditRow::as_select())
        .load(conn)
        .await
}

async fn load_steps(conn: &mut Conn, instance: i64) -> Result<Vec<StepRow>, DieselError> {
    workflow_instance_steps::table
        .filter(workflow_instance_steps::instance_id.eq(instance))
        .order(workflow_instance_steps::step_order)
        .select(StepRow::as_select())
        .load(conn)
        .await
}

/// Inserts audit entries, resolving their step orders to the instance's step ids.
async fn insert_audit(
    conn: &mut Conn,
    instance: i64,
    step_ids: &HashMap<i32, i64>,
    entries: Vec<NewAuditEntry>,
) -> Result<(), TxError> {
    let rows = entries
        .into_iter()
        .map(|e| {
            let step_id = match e.step_order {
                Some(order) => Some(*step_ids.get(&order).ok_or_else(|| {
                    WorkflowError::Internal(format!("audit names unknown step {order}"))
                })?),
                None => None,
            };
            Ok(NewAuditRow {
                instance_id: instance,
                step_id,
                action: e.action.as_str(),
                actor_user_id: e.actor_user_id.map(UserId::get),
                comment: e.comment,
                at: e.at,
            })
        })
        .collect::<Result<Vec<_>, TxError>>()?;
    diesel::insert_into(workflow_audit_log::table)
        .values(&rows)
        .execute(conn)
        .await?;
    Ok(())
}

/// An inbox line: step columns, then instance columns.
type InboxRow = (
    i64,
    i32,
    String,
    Option<i64>,
    Option<String>,
    Option<DateTime<Utc>>,
    i64,
    String,
    String,
    i64,
);

#[derive(QueryableByName)]
struct ClaimedRow {
    #[diesel(sql_type = BigInt)]
    id: i64,
    #[diesel(sql_type = Integer)]
    attempts: i32,
    #[diesel(sql_type = Jsonb)]
    payload: serde_json::Value,
}

impl WorkflowRepository for PgStore {
    async fn active_template(&self, event: &EventName) -> Result<Option<Template>, WorkflowError> {
        self.with_conn(async |conn| {
            let row = workflow_templates::table
                .filter(workflow_templates::event.eq(event.as_str()))
                .filter(workflow_templates::is_active)
                .select(TemplateRow::as_select())
                .first(conn)
                .await
                .optional()?;
            match row {
                None => Ok(None),
                Some(row) => {
                    let steps = load_template_steps(conn, row.id).await?;
                    Ok(Some(row.into_domain(steps)?))
                }
            }
        })
        .await
    }

    async fn template(&self, id: TemplateId) -> Result<Template, WorkflowError> {
        self.with_conn(async |conn| {
            let row = workflow_templates::table
                .find(id.get())
                .select(TemplateRow::as_select())
                .first(conn)
                .await
                .optional()?
                .ok_or_else(|| WorkflowError::not_found(format!("template {id}")))?;
            let steps = load_template_steps(conn, row.id).await?;
            Ok(row.into_domain(steps)?)
        })
        .await
    }

    async fn update_template(
        &self,
        id: TemplateId,
        update: TemplateUpdate,
    ) -> Result<Template, WorkflowError> {
        self.with_conn(async |conn| {
            let result = conn
                .transaction::<_, TxError, _>(async |conn| {
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
                    let row = workflow_templates::table
                        .find(id.get())
                        .select(TemplateRow::as_select())
                        .first(conn)
                        .await?;
                    let steps = load_template_steps(conn, id.get()).await?;
                    Ok(row.into_domain(steps)?)
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
            let result = conn
                .transaction::<_, TxError, _>(async |conn| {
                    // Share-lock the template: a concurrent update (which takes it FOR UPDATE)
                    // either happened before, and then the version read at trigger time differs,
                    // or waits for this instance and then sees it active.
                    let current: Option<(i32, bool)> = workflow_templates::table
                        .find(new.template_id.get())
                        .select((workflow_templates::version, workflow_templates::is_active))
                        .for_share()
                        .first(conn)
                        .await
                        .optional()?;
                    if current != Some((new.template_version, true)) {
                        return Err(WorkflowError::Unavailable(format!(
                            "template {} changed while the instance was being created; retry",
                            new.template_id
                        ))
                        .into());
                    }
                    let row: InstanceRow = diesel::insert_into(workflow_instances::table)
                        .values(NewInstanceRow {
                            template_id: new.template_id.get(),
                            template_version: new.template_version,
                            event: new.event.as_str(),
                            entity_type: new.entity_type.as_str(),
                            entity_id: new.entity_id.get(),
                            initiated_by: new.initiated_by.get(),
                            status: new.status.as_str(),
                            context: new.context.as_ref(),
                            created_at: new.created_at,
                            updated_at: new.created_at,
                        })
                        .returning(InstanceRow::as_returning())
                        .get_result(conn)
                        .await?;
                    let step_rows: Vec<_> = new
                        .steps
                        .iter()
                        .map(|s| {
                            let (approver_user_id, approver_role) = approver_columns(&s.approver);
                            NewStepRow {
                                instance_id: row.id,
                                step_order: s.step_order,
                                name: s.name.clone(),
                                approver_user_id,
                                approver_role,
                                eligible_user_ids: s
                                    .eligible_user_ids
                                    .iter()
                                    .map(|u| u.get())
                                    .collect(),
                                status: s.status.as_str(),
                                activated_at: s.activated_at,
                            }
                        })
                        .collect();
                    let mut steps: Vec<StepRow> =
                        diesel::insert_into(workflow_instance_steps::table)
                            .values(&step_rows)
                            .returning(StepRow::as_returning())
                            .get_results(conn)
                            .await?;
                    steps.sort_by_key(|s| s.step_order);
                    let step_ids = steps.iter().map(|s| (s.step_order, s.id)).collect();
                    insert_audit(conn, row.id, &step_ids, new.audit.clone()).await?;
                    let audit = load_audit(conn, row.id).await?;
                    Ok(row.into_domain(steps, audit)?)
                })
                .await;
            match result {
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
                other => other,
            }
        })
        .await
    }

    async fn instance(&self, id: InstanceId) -> Result<Instance, WorkflowError> {
        self.with_conn(async |conn| {
            let row = workflow_instances::table
                .find(id.get())
                .select(InstanceRow::as_select())
                .first(conn)
                .await
                .optional()?
                .ok_or_else(|| WorkflowError::not_found(format!("instance {id}")))?;
            let steps = load_steps(conn, row.id).await?;
            let audit = load_audit(conn, row.id).await?;
            Ok(row.into_domain(steps, audit)?)
        })
        .await
    }

    async fn decide(&self, step: StepId, decide: DecideFn) -> Result<Instance, WorkflowError> {
        self.with_conn(async |conn| {
            conn.transaction::<_, TxError, _>(async |conn| {
                // Lock order: the instance row, then its step rows. Every decision on an
                // instance queues on the first lock, so the re-check below sees the winner.
                let owner = workflow_instance_steps::table
                    .filter(workflow_instance_steps::id.eq(step.get()))
                    .select(workflow_instance_steps::instance_id)
                    .single_value();
                let row = workflow_instances::table
                    .filter(workflow_instances::id.nullable().eq(owner))
                    .select(InstanceRow::as_select())
                    .for_update()
                    .first(conn)
                    .await
                    .optional()?
                    .ok_or_else(|| WorkflowError::not_found(format!("step {step}")))?;
                let steps = workflow_instance_steps::table
                    .filter(workflow_instance_steps::instance_id.eq(row.id))
                    .order(workflow_instance_steps::step_order)
                    .select(StepRow::as_select())
                    .for_update()
                    .load(conn)
                    .await?;
                let instance_id = row.id;
                let mut instance = row.into_domain(steps, Vec::new())?;
                let decided = decide(&instance)?;
                crate::domain::machine::apply(&mut instance, &decided);

                for s in &decided.changed_steps {
                    diesel::update(workflow_instance_steps::table.find(s.id.get()))
                        .set((
                            workflow_instance_steps::status.eq(s.status.as_str()),
                            workflow_instance_steps::acted_by_user_id
                                .eq(s.acted_by_user_id.map(UserId::get)),
                            workflow_instance_steps::comment.eq(&s.comment),
                            workflow_instance_steps::acted_at.eq(s.acted_at),
                            workflow_instance_steps::activated_at.eq(s.activated_at),
                        ))
                        .execute(conn)
                        .await?;
                }
                diesel::update(workflow_instances::table.find(instance_id))
                    .set((
                        workflow_instances::status.eq(decided.instance_status.as_str()),
                        workflow_instances::updated_at.eq(decided.updated_at),
                        workflow_instances::completed_at.eq(decided.completed_at),
                    ))
                    .execute(conn)
                    .await?;
                let step_ids = instance
                    .steps
                    .iter()
                    .map(|s| (s.step_order, s.id.get()))
                    .collect();
                insert_audit(conn, instance_id, &step_ids, decided.audit.clone()).await?;
                if !decided.callbacks.is_empty() {
                    let rows = decided
                        .callbacks
                        .iter()
                        .map(|event| {
                            let payload = serde_json::to_value(event)
                                .map_err(|e| WorkflowError::Internal(e.to_string()))?;
                            Ok((
                                workflow_callback_outbox::instance_id.eq(instance_id),
                                workflow_callback_outbox::kind.eq(event.kind.as_str()),
                                workflow_callback_outbox::payload.eq(payload),
                                workflow_callback_outbox::created_at.eq(event.at),
                                workflow_callback_outbox::due_at.eq(event.at),
                            ))
                        })
                        .collect::<Result<Vec<_>, TxError>>()?;
                    diesel::insert_into(workflow_callback_outbox::table)
                        .values(&rows)
                        .execute(conn)
                        .await?;
                }
                let audit = load_audit(conn, instance_id).await?;
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
        use diesel::PgArrayExpressionMethods;
        self.with_conn(async |conn| {
            let rows: Vec<InboxRow> = workflow_instance_steps::table
                .inner_join(workflow_instances::table)
                .filter(workflow_instance_steps::status.eq(StepStatus::AwaitingAction.as_str()))
                .filter(workflow_instance_steps::eligible_user_ids.contains(vec![user.get()]))
                .order((
                    workflow_instance_steps::activated_at,
                    workflow_instance_steps::id,
                ))
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
            let bad = |what: &str| WorkflowError::Internal(format!("stored {what} is invalid"));
            rows.into_iter()
                .map(
                    |(
                        id,
                        step_order,
                        name,
                        user_col,
                        role_col,
                        activated_at,
                        instance_id,
                        event,
                        entity_type,
                        entity_id,
                    )| {
                        Ok(PendingStep {
                            step_id: StepId::new(id).map_err(|_| bad("step id"))?,
                            step_order,
                            name,
                            approver: rows::approver(user_col, role_col)?,
                            activated_at,
                            instance_id: InstanceId::new(instance_id)
                                .map_err(|_| bad("instance id"))?,
                            event: EventName::new(event).map_err(|_| bad("event"))?,
                            entity_type: EntityType::new(entity_type)
                                .map_err(|_| bad("entity type"))?,
                            entity_id: EntityId::new(entity_id).map_err(|_| bad("entity id"))?,
                        })
                    },
                )
                .collect::<Result<Vec<_>, TxError>>()
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
            // SKIP LOCKED: dispatchers in other processes claim other rows instead of waiting.
            let rows: Vec<ClaimedRow> = diesel::sql_query(
                "UPDATE workflow_callback_outbox SET due_at = $2, attempts = attempts + 1 \
                 WHERE id IN (SELECT id FROM workflow_callback_outbox \
                              WHERE delivered_at IS NULL AND due_at <= $1 \
                              ORDER BY due_at, id LIMIT $3 FOR UPDATE SKIP LOCKED) \
                 RETURNING id, attempts, payload",
            )
            .bind::<Timestamptz, _>(now)
            .bind::<Timestamptz, _>(lease_until)
            .bind::<BigInt, _>(i64::from(limit))
            .load(conn)
            .await?;
            rows.into_iter()
                .map(|r| {
                    let event = serde_json::from_value(r.payload).map_err(|e| {
                        WorkflowError::Internal(format!("outbox row {} is unreadable: {e}", r.id))
                    })?;
                    Ok(OutboxItem {
                        id: r.id,
                        attempts: r.attempts,
                        event,
                    })
                })
                .collect::<Result<Vec<_>, TxError>>()
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

impl RoleResolver for PgStore {
    async fn user_exists(&self, user: UserId) -> Result<bool, WorkflowError> {
        self.with_conn(async |conn| {
            Ok(
                diesel::select(diesel::dsl::exists(users::table.find(user.get())))
                    .get_result(conn)
                    .await?,
            )
        })
        .await
    }

    async fn eligible_users(
        &self,
        approvers: &[Approver],
    ) -> Result<Vec<Vec<UserId>>, WorkflowError> {
        let wanted_roles: Vec<&str> = approvers
            .iter()
            .filter_map(|a| match a {
                Approver::Role { role } => Some(role.as_str()),
                Approver::User { .. } => None,
            })
            .collect();
        let wanted_users: Vec<i64> = approvers
            .iter()
            .filter_map(|a| match a {
                Approver::User { user_id } => Some(user_id.get()),
                Approver::Role { .. } => None,
            })
            .collect();
        self.with_conn(async |conn| {
            let memberships: Vec<(String, i64)> = if wanted_roles.is_empty() {
                Vec::new()
            } else {
                user_roles::table
                    .filter(user_roles::role.eq_any(&wanted_roles))
                    .order((user_roles::role, user_roles::user_id))
                    .select((user_roles::role, user_roles::user_id))
                    .load(conn)
                    .await?
            };
            let known_users: Vec<i64> = if wanted_users.is_empty() {
                Vec::new()
            } else {
                users::table
                    .filter(users::id.eq_any(&wanted_users))
                    .select(users::id)
                    .load(conn)
                    .await?
            };
            let to_user = |raw: i64| {
                UserId::new(raw).map_err(|_| {
                    TxError::from(WorkflowError::Internal(format!(
                        "stored user id {raw} is invalid"
                    )))
                })
            };
            approvers
                .iter()
                .map(|a| match a {
                    Approver::User { user_id } => Ok(if known_users.contains(&user_id.get()) {
                        vec![*user_id]
                    } else {
                        Vec::new()
                    }),
                    Approver::Role { role } => memberships
                        .iter()
                        .filter(|(r, _)| r == role.as_str())
                        .map(|(_, u)| to_user(*u))
                        .collect(),
                })
                .collect()
        })
        .await
    }
}
