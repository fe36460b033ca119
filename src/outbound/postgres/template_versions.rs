//! Outbound adapter, PostgreSQL: template versions. Each version of a template is stored whole
//! in `workflow_template_versions` (its steps as a JSON array of the step columns) by the
//! transaction that makes it, and never changed afterwards (a database trigger refuses it), so
//! any past version reads back exactly as it was.

use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use serde::{Deserialize, Serialize};

use super::errors::TxError;
use super::rows::{DueColumns, TemplateRow, TemplateStepRow, approver_columns, quorum_column};
use super::schema::workflow_template_versions;
use super::templates::{WhileInUse, change};
use super::{Conn, PgStore};
use crate::domain::WorkflowError;
use crate::domain::model::{Done, Once, Template, TemplateId, TemplateUpdate};

/// A step as the `steps` column holds it: the columns of `workflow_template_steps`.
#[derive(Serialize, Deserialize)]
struct VersionStep {
    step_order: i32,
    name: String,
    approver_user_id: Option<i64>,
    approver_role: Option<String>,
    /// As the column: `null` for "all"; versions stored before quorums have none, which is 1.
    #[serde(default = "one")]
    quorum: Option<i32>,
    /// The step's condition; absent when it has none (as in versions stored before conditions).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    when: Option<String>,
    /// The due date rule's columns; absent when it has none (as in versions stored before due
    /// dates).
    #[serde(default, flatten)]
    due: DueColumnsJson,
}

/// [`DueColumns`] without the absent keys, so that a step without a rule is stored as before.
#[derive(Default, Serialize, Deserialize)]
struct DueColumnsJson {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    due_in: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    on_overdue: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    escalate_to_user_id: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    escalate_to_role: Option<String>,
}

fn one() -> Option<i32> {
    Some(1)
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = workflow_template_versions)]
struct VersionRow {
    template_id: i64,
    version: i32,
    name: String,
    event: String,
    entity_type: String,
    is_active: bool,
    forbid_self_approval: bool,
    steps: serde_json::Value,
}

impl VersionRow {
    fn into_domain(self) -> Result<Template, WorkflowError> {
        let steps: Vec<VersionStep> = serde_json::from_value(self.steps).map_err(|e| {
            WorkflowError::internal_from(
                format!(
                    "stored steps of template {} version {} are invalid",
                    self.template_id, self.version
                ),
                e,
            )
        })?;
        let steps = steps
            .into_iter()
            .map(|s| TemplateStepRow {
                template_id: self.template_id,
                step_order: s.step_order,
                name: s.name,
                approver_user_id: s.approver_user_id,
                approver_role: s.approver_role,
                quorum: s.quorum,
                when_condition: s.when,
                due_in: s.due.due_in,
                on_overdue: s.due.on_overdue,
                escalate_to_user_id: s.due.escalate_to_user_id,
                escalate_to_role: s.due.escalate_to_role,
            })
            .collect();
        // The same checks as a current template's row.
        TemplateRow {
            id: self.template_id,
            name: self.name,
            event: self.event,
            entity_type: self.entity_type,
            version: self.version,
            is_active: self.is_active,
            forbid_self_approval: self.forbid_self_approval,
        }
        .into_domain(steps)
    }
}

/// Stores `template` as its version `template.version`; part of the caller's transaction.
pub(super) async fn record_version(conn: &mut Conn, template: &Template) -> Result<(), TxError> {
    let steps: Vec<VersionStep> = template
        .steps
        .iter()
        .map(|s| {
            let (approver_user_id, approver_role) = approver_columns(&s.approver);
            VersionStep {
                step_order: s.step_order,
                name: s.name.clone(),
                approver_user_id,
                approver_role,
                quorum: quorum_column(s.quorum),
                when: s.when.as_ref().map(|w| w.as_str().to_owned()),
                due: {
                    let due = DueColumns::of(s.due.as_ref());
                    DueColumnsJson {
                        due_in: due.due_in,
                        on_overdue: due.on_overdue,
                        escalate_to_user_id: due.escalate_to_user_id,
                        escalate_to_role: due.escalate_to_role,
                    }
                },
            }
        })
        .collect();
    let steps = serde_json::to_value(&steps)
        .map_err(|e| WorkflowError::internal_from("template steps as JSON", e))?;
    diesel::insert_into(workflow_template_versions::table)
        .values((
            workflow_template_versions::template_id.eq(template.id.get()),
            workflow_template_versions::version.eq(template.version),
            workflow_template_versions::name.eq(&template.name),
            workflow_template_versions::event.eq(template.event.as_str()),
            workflow_template_versions::entity_type.eq(template.entity_type.as_str()),
            workflow_template_versions::is_active.eq(template.is_active),
            workflow_template_versions::forbid_self_approval.eq(template.forbid_self_approval),
            workflow_template_versions::steps.eq(steps),
        ))
        .execute(conn)
        .await?;
    Ok(())
}

/// Template `id` as it was at `version`. `NotFound` for an unknown template or version.
pub(super) async fn template_version(
    store: &PgStore,
    id: TemplateId,
    version: i32,
) -> Result<Template, WorkflowError> {
    store
        .with_conn(async |conn| {
            let row = workflow_template_versions::table
                .find((id.get(), version))
                .select(VersionRow::as_select())
                .first(conn)
                .await
                .optional()?;
            Ok(row.map(VersionRow::into_domain).transpose()?)
        })
        .await?
        .ok_or_else(|| WorkflowError::not_found(format!("version {version} of template {id}")))
}

/// Publishes `update` as the template's next version, whether or not instances use it.
pub(super) async fn publish_version(
    store: &PgStore,
    id: TemplateId,
    update: TemplateUpdate,
    once: Option<Once<Template>>,
) -> Result<Done<Template>, WorkflowError> {
    change(store, id, update, WhileInUse::Allow, once).await
}
