//! Outbound adapter, PostgreSQL: the template aggregate (a template row and its step rows).
//!
//! The unique index that allows one active template per event is the rule's guard under
//! concurrency; its violation is answered like any other validation error.

use diesel::prelude::*;
use diesel_async::{AsyncConnection, RunQueryDsl};

use super::errors::{TxError, unique_violation_of};
use super::rows::{TemplateRow, TemplateStepRow};
use super::schema::{workflow_instances, workflow_template_steps, workflow_templates};
use super::{ACTIVE, Conn, PgStore};
use crate::domain::WorkflowError;
use crate::domain::model::{EventName, NewTemplate, Template, TemplateId, TemplateUpdate};

const ONE_ACTIVE_TEMPLATE_INDEX: &str = "workflow_templates_one_active_per_event";

pub(super) async fn active_template(
    store: &PgStore,
    event: &EventName,
) -> Result<Option<Template>, WorkflowError> {
    store
        .with_conn(async |conn| load_template(conn, TemplateFilter::ActiveFor(event)).await)
        .await
}

pub(super) async fn template(store: &PgStore, id: TemplateId) -> Result<Template, WorkflowError> {
    store
        .with_conn(async |conn| load_template(conn, TemplateFilter::Id(id)).await)
        .await?
        .ok_or_else(|| WorkflowError::not_found(format!("template {id}")))
}

pub(super) async fn create_template(
    store: &PgStore,
    new: NewTemplate,
) -> Result<Template, WorkflowError> {
    store
        .with_conn(async |conn| {
            let result = conn
                .transaction::<_, TxError, _>(async |conn| {
                    let row: TemplateRow = diesel::insert_into(workflow_templates::table)
                        .values((
                            workflow_templates::name.eq(&new.name),
                            workflow_templates::event.eq(new.event.as_str()),
                            workflow_templates::entity_type.eq(new.entity_type.as_str()),
                            workflow_templates::version.eq(1),
                            workflow_templates::is_active.eq(new.is_active),
                        ))
                        .returning(TemplateRow::as_returning())
                        .get_result(conn)
                        .await?;
                    let mut template = row.into_domain(Vec::new())?;
                    let steps: Vec<_> = new
                        .steps
                        .iter()
                        .map(|s| TemplateStepRow::new(template.id, s))
                        .collect();
                    diesel::insert_into(workflow_template_steps::table)
                        .values(&steps)
                        .execute(conn)
                        .await?;
                    template.steps = new.steps.clone();
                    Ok(template)
                })
                .await;
            refuse_second_active(result)
        })
        .await
}

pub(super) async fn update_template(
    store: &PgStore,
    id: TemplateId,
    update: TemplateUpdate,
) -> Result<Template, WorkflowError> {
    store
        .with_conn(async |conn| {
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
                            WorkflowError::internal(format!("template {id} vanished")).into()
                        })
                })
                .await;
            refuse_second_active(result)
        })
        .await
}

/// Answers a second active template for an event as the validation error it is.
fn refuse_second_active<T>(result: Result<T, TxError>) -> Result<T, TxError> {
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
}

enum TemplateFilter<'a> {
    Id(TemplateId),
    ActiveFor(&'a EventName),
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

#[cfg(any(test, feature = "test-support"))]
impl PgStore {
    /// Adds a template as given, its id and version included.
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
                    ))
                    .on_conflict_do_nothing()
                    .execute(conn)
                    .await?;
                if inserted == 0 {
                    let message = format!("template {} exists", template.id);
                    return Err(WorkflowError::validation("id", message).into());
                }
                let steps: Vec<_> = template
                    .steps
                    .iter()
                    .map(|s| TemplateStepRow::new(template.id, s))
                    .collect();
                diesel::insert_into(workflow_template_steps::table)
                    .values(&steps)
                    .execute(conn)
                    .await?;
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
