//! Outbound adapter, PostgreSQL: the template aggregate (a template row and its step rows):
//! reads, lists, creation, and changes (in place, or as a new version).
//!
//! The unique index that allows one active template per event is the rule's guard under
//! concurrency; its violation becomes `TemplateConflict`. Every write also stores the version
//! it makes in `workflow_template_versions` (see `template_versions`), in the same transaction.
//! Writes run on a task of their own, so that a client hanging up can't cancel one half-way.

use diesel::prelude::*;
use diesel::result::Error as DieselError;
use diesel_async::{AsyncConnection, RunQueryDsl};

use super::errors::{TxError, unique_violation_of};
use super::idempotency::once_before_commit;
use super::rows::{TemplateRow, TemplateStepRow};
use super::schema::{workflow_instances, workflow_template_steps, workflow_templates};
use super::template_versions::record_version;
use super::{ACTIVE, Conn, PgStore, detached};
use crate::domain::WorkflowError;
use crate::domain::model::{
    Done, EventName, NewTemplate, Once, Template, TemplateFilter, TemplateId, TemplateUpdate,
};

const ONE_ACTIVE_TEMPLATE_INDEX: &str = "workflow_templates_one_active_per_event";

/// Whether a change may go ahead while active instances use the template.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum WhileInUse {
    /// `PUT`: refused with `TemplateInUse`.
    Refuse,
    /// A new version: running instances keep the steps they copied.
    Allow,
}

pub(super) async fn active_template(
    store: &PgStore,
    event: &EventName,
) -> Result<Option<Template>, WorkflowError> {
    store
        .with_conn(async |conn| load_template(conn, Filter::ActiveFor(event)).await)
        .await
}

pub(super) async fn template(store: &PgStore, id: TemplateId) -> Result<Template, WorkflowError> {
    store
        .with_conn(async |conn| load_template(conn, Filter::Id(id)).await)
        .await?
        .ok_or_else(|| WorkflowError::not_found(format!("template {id}")))
}

/// The templates `filter` asks for, by id, each with its steps: one query.
pub(super) async fn templates(
    store: &PgStore,
    filter: TemplateFilter,
) -> Result<Vec<Template>, WorkflowError> {
    store
        .with_conn(async |conn| {
            let mut query = workflow_templates::table
                .inner_join(workflow_template_steps::table)
                .order((workflow_templates::id, workflow_template_steps::step_order))
                .select((TemplateRow::as_select(), TemplateStepRow::as_select()))
                .into_boxed();
            if let Some(event) = &filter.event {
                query = query.filter(workflow_templates::event.eq(event.as_str()));
            }
            if let Some(is_active) = filter.is_active {
                query = query.filter(workflow_templates::is_active.eq(is_active));
            }
            let rows: Vec<(TemplateRow, TemplateStepRow)> = query.load(conn).await?;
            let mut found: Vec<(TemplateRow, Vec<TemplateStepRow>)> = Vec::new();
            for (template, step) in rows {
                match found.last_mut() {
                    Some((last, steps)) if last.id == template.id => steps.push(step),
                    _ => found.push((template, vec![step])),
                }
            }
            Ok(found
                .into_iter()
                .map(|(template, steps)| template.into_domain(steps))
                .collect::<Result<_, _>>()?)
        })
        .await
}

pub(super) async fn create_template(
    store: &PgStore,
    new: NewTemplate,
    once: Option<Once<Template>>,
) -> Result<Done<Template>, WorkflowError> {
    let store = store.clone();
    detached("create template", async move {
        store
            .with_write(async |conn, sent| {
                conn.transaction::<_, TxError, _>(async |conn| {
                    once_before_commit(conn, sent, once, async |conn| {
                        insert_template(conn, &new).await
                    })
                    .await
                })
                .await
            })
            .await
    })
    .await
}

/// Inserts `new` as version 1, with its steps and the record of that version.
async fn insert_template(conn: &mut Conn, new: &NewTemplate) -> Result<Template, TxError> {
    let row: TemplateRow = diesel::insert_into(workflow_templates::table)
        .values((
            workflow_templates::name.eq(&new.name),
            workflow_templates::event.eq(new.event.as_str()),
            workflow_templates::entity_type.eq(new.entity_type.as_str()),
            workflow_templates::version.eq(1),
            workflow_templates::is_active.eq(new.is_active),
            workflow_templates::forbid_self_approval.eq(new.forbid_self_approval),
        ))
        .returning(TemplateRow::as_returning())
        .get_result(conn)
        .await
        .map_err(|e| one_active(e, new.event.as_str()))?;
    let mut template = row.into_domain(Vec::new())?;
    insert_steps(conn, &template.id, &new.steps).await?;
    template.steps = new.steps.clone();
    record_version(conn, &template).await?;
    Ok(template)
}

pub(super) async fn update_template(
    store: &PgStore,
    id: TemplateId,
    update: TemplateUpdate,
) -> Result<Template, WorkflowError> {
    change(store, id, update, WhileInUse::Refuse, None)
        .await?
        .unkeyed()
}

/// Applies `update` to template `id` as its next version, in one transaction with the record
/// of that version; `while_in_use` says whether active instances of the template forbid it.
pub(super) async fn change(
    store: &PgStore,
    id: TemplateId,
    update: TemplateUpdate,
    while_in_use: WhileInUse,
    once: Option<Once<Template>>,
) -> Result<Done<Template>, WorkflowError> {
    let store = store.clone();
    detached("change template", async move {
        store
            .with_write(async |conn, sent| {
                conn.transaction::<_, TxError, _>(async |conn| {
                    once_before_commit(conn, sent, once, async |conn| {
                        change_in(conn, id, &update, while_in_use).await
                    })
                    .await
                })
                .await
            })
            .await
    })
    .await
}

async fn change_in(
    conn: &mut Conn,
    id: TemplateId,
    update: &TemplateUpdate,
    while_in_use: WhileInUse,
) -> Result<Template, TxError> {
    // The exclusive lock makes a concurrent trigger (which share-locks the template) either
    // finish first, and then be seen below, or fail its version check afterwards; and it
    // numbers concurrent changes one after the other.
    let row = workflow_templates::table
        .find(id.get())
        .select(TemplateRow::as_select())
        .for_update()
        .first(conn)
        .await
        .optional()?
        .ok_or_else(|| WorkflowError::not_found(format!("template {id}")))?;
    if while_in_use == WhileInUse::Refuse {
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
    }
    diesel::update(workflow_templates::table.find(id.get()))
        .set((
            workflow_templates::name.eq(update.name.as_ref().unwrap_or(&row.name)),
            workflow_templates::is_active.eq(update.is_active.unwrap_or(row.is_active)),
            workflow_templates::forbid_self_approval.eq(update
                .forbid_self_approval
                .unwrap_or(row.forbid_self_approval)),
            workflow_templates::version.eq(row.version + 1),
        ))
        .execute(conn)
        .await
        .map_err(|e| one_active(e, &row.event))?;
    if let Some(steps) = &update.steps {
        diesel::delete(
            workflow_template_steps::table
                .filter(workflow_template_steps::template_id.eq(id.get())),
        )
        .execute(conn)
        .await?;
        insert_steps(conn, &id, steps).await?;
    }
    let template = load_template(conn, Filter::Id(id))
        .await?
        .ok_or_else(|| WorkflowError::internal(format!("template {id} vanished")))?;
    record_version(conn, &template).await?;
    Ok(template)
}

async fn insert_steps(
    conn: &mut Conn,
    id: &TemplateId,
    steps: &[crate::domain::model::TemplateStep],
) -> Result<(), TxError> {
    let rows: Vec<_> = steps.iter().map(|s| TemplateStepRow::new(*id, s)).collect();
    diesel::insert_into(workflow_template_steps::table)
        .values(&rows)
        .execute(conn)
        .await?;
    Ok(())
}

/// A second active template for `event` as the conflict it is; other failures as they are.
fn one_active(e: DieselError, event: &str) -> TxError {
    let e = TxError::from(e);
    if unique_violation_of(&e, ONE_ACTIVE_TEMPLATE_INDEX) {
        WorkflowError::TemplateConflict {
            event: event.to_owned(),
        }
        .into()
    } else {
        e
    }
}

enum Filter<'a> {
    Id(TemplateId),
    ActiveFor(&'a EventName),
}

/// One template and its steps, in one query.
async fn load_template(conn: &mut Conn, filter: Filter<'_>) -> Result<Option<Template>, TxError> {
    let query = workflow_templates::table
        .inner_join(workflow_template_steps::table)
        .order(workflow_template_steps::step_order)
        .select((TemplateRow::as_select(), TemplateStepRow::as_select()))
        .into_boxed();
    let query = match filter {
        Filter::Id(id) => query.filter(workflow_templates::id.eq(id.get())),
        Filter::ActiveFor(event) => query
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

#[cfg(any(test, feature = "test-support"))]
impl PgStore {
    /// Adds a template as given, its id and version included (and records that version).
    pub async fn put_template(&self, template: &Template) -> Result<(), WorkflowError> {
        self.with_conn(async |conn| {
            conn.transaction::<_, TxError, _>(async |conn| {
                let inserted = diesel::insert_into(workflow_templates::table)
                    .values((
                        workflow_templates::id.eq(template.id.get()),
                        workflow_templates::name.eq(&template.name),
                        workflow_templates::event.eq(template.event.as_str()),
                        workflow_templates::entity_type.eq(template.entity_type.as_str()),
                        workflow_templates::version.eq(template.version),
                        workflow_templates::is_active.eq(template.is_active),
                        workflow_templates::forbid_self_approval.eq(template.forbid_self_approval),
                    ))
                    .on_conflict_do_nothing()
                    .execute(conn)
                    .await?;
                if inserted == 0 {
                    let message = format!("template {} exists", template.id);
                    return Err(WorkflowError::validation("id", message).into());
                }
                insert_steps(conn, &template.id, &template.steps).await?;
                record_version(conn, template).await?;
                // The id was given, not drawn from the sequence: move the sequence past it so
                // that a later `create_template` does not draw it again.
                diesel::sql_query(
                    "SELECT setval('workflow_templates_id_seq', \
                     GREATEST((SELECT max(id) FROM workflow_templates), 1))",
                )
                .execute(conn)
                .await?;
                Ok(())
            })
            .await
        })
        .await
    }
}
