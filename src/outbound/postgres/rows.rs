//! Outbound adapter, PostgreSQL: the row types and their conversion to and from domain values.
//! A stored value the domain would refuse is reported as `Internal`: the database is corrupt.

use chrono::{DateTime, Utc};
use diesel::prelude::*;

use super::schema::{
    workflow_audit_log, workflow_instance_steps, workflow_instances, workflow_template_steps,
    workflow_templates,
};
use crate::domain::WorkflowError;
use crate::domain::model::{
    Approver, AuditAction, AuditEntry, AuditHash, Condition, DueIn, DueRule, EntityId, EntityType,
    EventName, Instance, InstanceId, InstanceStatus, InstanceStep, OnOverdue, PendingStep, Quorum,
    RoleName, StepApproval, StepId, StepStatus, Template, TemplateId, TemplateStep, UserId,
};

fn corrupt(what: &str, value: impl std::fmt::Display) -> WorkflowError {
    WorkflowError::internal(format!("stored {what} '{value}' is invalid"))
}

pub fn user_id(raw: i64) -> Result<UserId, WorkflowError> {
    UserId::new(raw).map_err(|_| corrupt("user id", raw))
}

/// Reads an approver from its two nullable columns.
pub fn approver(user: Option<i64>, role: Option<String>) -> Result<Approver, WorkflowError> {
    match (user, role) {
        (Some(user), None) => Ok(Approver::User {
            user_id: user_id(user)?,
        }),
        (None, Some(role)) => Ok(Approver::Role {
            role: RoleName::new(role.clone()).map_err(|_| corrupt("role", role))?,
        }),
        _ => Err(WorkflowError::internal(
            "stored approver has both or neither of user and role",
        )),
    }
}

/// Splits an approver into its two nullable columns.
pub fn approver_columns(approver: &Approver) -> (Option<i64>, Option<String>) {
    match approver {
        Approver::User { user_id } => (Some(user_id.get()), None),
        Approver::Role { role } => (None, Some(role.as_str().to_owned())),
    }
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = workflow_templates)]
pub struct TemplateRow {
    pub id: i64,
    pub name: String,
    pub event: String,
    pub entity_type: String,
    pub version: i32,
    pub is_active: bool,
    pub forbid_self_approval: bool,
}

#[derive(Queryable, Selectable, Insertable)]
#[diesel(table_name = workflow_template_steps)]
// `quorum` NULL means "all": it must be written as NULL, not as the column's default (1).
#[diesel(treat_none_as_default_value = false)]
pub struct TemplateStepRow {
    pub template_id: i64,
    pub step_order: i32,
    pub name: String,
    pub approver_user_id: Option<i64>,
    pub approver_role: Option<String>,
    /// NULL: "all".
    pub quorum: Option<i32>,
    /// The step's condition (`when`); NULL: none.
    pub when_condition: Option<String>,
    /// The due date rule (see [`DueColumns`]); all NULL: none.
    pub due_in: Option<String>,
    pub on_overdue: Option<String>,
    pub escalate_to_user_id: Option<i64>,
    pub escalate_to_role: Option<String>,
}

impl TemplateStepRow {
    pub fn new(template: TemplateId, step: &TemplateStep) -> Self {
        let (approver_user_id, approver_role) = approver_columns(&step.approver);
        let due = DueColumns::of(step.due.as_ref());
        Self {
            template_id: template.get(),
            step_order: step.step_order,
            name: step.name.clone(),
            approver_user_id,
            approver_role,
            quorum: quorum_column(step.quorum),
            when_condition: step.when.as_ref().map(|w| w.as_str().to_owned()),
            due_in: due.due_in,
            on_overdue: due.on_overdue,
            escalate_to_user_id: due.escalate_to_user_id,
            escalate_to_role: due.escalate_to_role,
        }
    }
}

/// A step's due date rule as its four columns (all NULL for a step without one).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct DueColumns {
    pub due_in: Option<String>,
    pub on_overdue: Option<String>,
    pub escalate_to_user_id: Option<i64>,
    pub escalate_to_role: Option<String>,
}

impl DueColumns {
    /// The columns of `rule`.
    pub fn of(rule: Option<&DueRule>) -> Self {
        let Some(rule) = rule else {
            return Self::default();
        };
        let (escalate_to_user_id, escalate_to_role) = rule
            .on_overdue
            .escalate_to()
            .map(approver_columns)
            .unwrap_or_default();
        Self {
            due_in: Some(rule.due_in.as_str().to_owned()),
            on_overdue: Some(rule.on_overdue.as_str().to_owned()),
            escalate_to_user_id,
            escalate_to_role,
        }
    }

    /// The rule these columns hold, if any.
    pub fn into_domain(self) -> Result<Option<DueRule>, WorkflowError> {
        let Some(text) = self.due_in else {
            return Ok(None);
        };
        let due_in = DueIn::parse(&text).map_err(|_| corrupt("due_in", &text))?;
        let on_overdue = match self.on_overdue.as_deref() {
            Some("notify") | None => OnOverdue::Notify,
            Some("reject") => OnOverdue::Reject,
            Some("escalate") => OnOverdue::Escalate {
                to: approver(self.escalate_to_user_id, self.escalate_to_role)?,
            },
            Some(other) => return Err(corrupt("on_overdue", other)),
        };
        Ok(Some(DueRule { due_in, on_overdue }))
    }
}

/// A quorum as its column: the number, or NULL for "all".
pub fn quorum_column(quorum: Quorum) -> Option<i32> {
    match quorum {
        Quorum::Count(n) => Some(i32::try_from(n).unwrap_or(i32::MAX)),
        Quorum::All => None,
    }
}

/// Reads a quorum from its column.
pub fn quorum(column: Option<i32>) -> Result<Quorum, WorkflowError> {
    match column {
        None => Ok(Quorum::All),
        Some(n) => u32::try_from(n)
            .ok()
            .filter(|n| *n > 0)
            .map(Quorum::Count)
            .ok_or_else(|| corrupt("quorum", n)),
    }
}

/// Reads a step's condition from its column.
pub fn condition(column: Option<String>) -> Result<Option<Condition>, WorkflowError> {
    column
        .map(|text| Condition::new(text.clone()).map_err(|_| corrupt("condition", text)))
        .transpose()
}

/// One approval as the `approvals` JSON array of a step row holds it.
#[derive(serde::Serialize, serde::Deserialize)]
struct ApprovalJson {
    user_id: i64,
    comment: Option<String>,
    at: DateTime<Utc>,
    /// A delegate's approval only: the key is absent for the others.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    acted_by: Option<i64>,
}

/// A step's approvals as the JSON its `approvals` column holds.
pub fn approvals_json(approvals: &[StepApproval]) -> Result<serde_json::Value, WorkflowError> {
    let rows: Vec<ApprovalJson> = approvals
        .iter()
        .map(|a| ApprovalJson {
            user_id: a.user_id.get(),
            comment: a.comment.clone(),
            at: a.at,
            acted_by: a.acted_by.map(UserId::get),
        })
        .collect();
    serde_json::to_value(rows).map_err(|e| WorkflowError::internal_from("approvals as JSON", e))
}

fn approvals(column: serde_json::Value) -> Result<Vec<StepApproval>, WorkflowError> {
    let rows: Vec<ApprovalJson> = serde_json::from_value(column)
        .map_err(|e| WorkflowError::internal_from("stored approvals are invalid", e))?;
    rows.into_iter()
        .map(|a| {
            Ok(StepApproval {
                user_id: user_id(a.user_id)?,
                comment: a.comment,
                at: a.at,
                acted_by: a.acted_by.map(user_id).transpose()?,
            })
        })
        .collect()
}

impl TemplateRow {
    pub fn into_domain(self, steps: Vec<TemplateStepRow>) -> Result<Template, WorkflowError> {
        Ok(Template {
            id: TemplateId::new(self.id).map_err(|_| corrupt("template id", self.id))?,
            event: EventName::new(self.event.clone()).map_err(|_| corrupt("event", &self.event))?,
            entity_type: EntityType::new(self.entity_type.clone())
                .map_err(|_| corrupt("entity type", &self.entity_type))?,
            name: self.name,
            version: self.version,
            is_active: self.is_active,
            forbid_self_approval: self.forbid_self_approval,
            steps: steps
                .into_iter()
                .map(|s| {
                    Ok(TemplateStep {
                        step_order: s.step_order,
                        name: s.name,
                        approver: approver(s.approver_user_id, s.approver_role)?,
                        quorum: quorum(s.quorum)?,
                        when: condition(s.when_condition)?,
                        due: DueColumns {
                            due_in: s.due_in,
                            on_overdue: s.on_overdue,
                            escalate_to_user_id: s.escalate_to_user_id,
                            escalate_to_role: s.escalate_to_role,
                        }
                        .into_domain()?,
                    })
                })
                .collect::<Result<_, WorkflowError>>()?,
        })
    }
}

#[derive(Queryable, Selectable, serde::Deserialize)]
#[diesel(table_name = workflow_instances)]
pub struct InstanceRow {
    pub id: i64,
    pub template_id: i64,
    pub template_version: i32,
    pub event: String,
    pub entity_type: String,
    pub entity_id: i64,
    pub initiated_by: i64,
    pub status: String,
    pub context: Option<serde_json::Value>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub completed_at: Option<DateTime<Utc>>,
}

#[derive(Queryable, Selectable, serde::Deserialize)]
#[diesel(table_name = workflow_instance_steps)]
pub struct StepRow {
    pub id: i64,
    pub step_order: i32,
    pub name: String,
    pub approver_user_id: Option<i64>,
    pub approver_role: Option<String>,
    pub eligible_user_ids: Vec<i64>,
    pub status: String,
    pub acted_by_user_id: Option<i64>,
    pub comment: Option<String>,
    pub acted_at: Option<DateTime<Utc>>,
    pub activated_at: Option<DateTime<Utc>>,
    pub quorum: i32,
    pub approvals: serde_json::Value,
    #[serde(default)]
    pub due_in: Option<String>,
    #[serde(default)]
    pub on_overdue: Option<String>,
    #[serde(default)]
    pub escalate_to_user_id: Option<i64>,
    #[serde(default)]
    pub escalate_to_role: Option<String>,
    #[serde(default)]
    pub due_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub overdue_at: Option<DateTime<Utc>>,
}

#[derive(Queryable, QueryableByName, Selectable, serde::Deserialize)]
#[diesel(table_name = workflow_audit_log)]
pub struct AuditRow {
    pub id: i64,
    pub instance_id: i64,
    pub step_id: Option<i64>,
    pub action: String,
    pub actor_user_id: Option<i64>,
    #[serde(default)]
    pub on_behalf_of: Option<i64>,
    pub comment: Option<String>,
    pub at: DateTime<Utc>,
    /// Read from JSON too (a trigger's write returns its rows so), where PostgreSQL writes a
    /// `bytea` as `\x` and hexadecimal digits.
    #[serde(deserialize_with = "bytea_from_json")]
    pub hash: Vec<u8>,
}

fn bytea_from_json<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
    use serde::de::Error;
    let text = <String as serde::Deserialize>::deserialize(d)?;
    let digits = text
        .strip_prefix("\\x")
        .ok_or_else(|| D::Error::custom("a bytea is written \\x followed by hex digits"))?;
    (0..digits.len())
        .step_by(2)
        .map(|i| {
            digits
                .get(i..i + 2)
                .and_then(|pair| u8::from_str_radix(pair, 16).ok())
                .ok_or_else(|| D::Error::custom("a bytea is written in pairs of hex digits"))
        })
        .collect()
}

impl StepRow {
    pub fn into_domain(self) -> Result<InstanceStep, WorkflowError> {
        Ok(InstanceStep {
            id: StepId::new(self.id).map_err(|_| corrupt("step id", self.id))?,
            step_order: self.step_order,
            name: self.name,
            approver: approver(self.approver_user_id, self.approver_role)?,
            eligible_user_ids: self
                .eligible_user_ids
                .into_iter()
                .map(user_id)
                .collect::<Result<_, _>>()?,
            quorum: u32::try_from(self.quorum)
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| corrupt("quorum", self.quorum))?,
            approvals: approvals(self.approvals)?,
            status: StepStatus::parse(&self.status)
                .ok_or_else(|| corrupt("step status", &self.status))?,
            acted_by_user_id: self.acted_by_user_id.map(user_id).transpose()?,
            comment: self.comment,
            acted_at: self.acted_at,
            activated_at: self.activated_at,
            due: DueColumns {
                due_in: self.due_in,
                on_overdue: self.on_overdue,
                escalate_to_user_id: self.escalate_to_user_id,
                escalate_to_role: self.escalate_to_role,
            }
            .into_domain()?,
            due_at: self.due_at,
            overdue_at: self.overdue_at,
        })
    }
}

impl AuditRow {
    pub fn into_domain(self) -> Result<AuditEntry, WorkflowError> {
        Ok(AuditEntry {
            id: self.id,
            instance_id: InstanceId::new(self.instance_id)
                .map_err(|_| corrupt("instance id", self.instance_id))?,
            step_id: self
                .step_id
                .map(|s| StepId::new(s).map_err(|_| corrupt("step id", s)))
                .transpose()?,
            action: AuditAction::parse(&self.action)
                .ok_or_else(|| corrupt("audit action", &self.action))?,
            actor_user_id: self.actor_user_id.map(user_id).transpose()?,
            on_behalf_of: self.on_behalf_of.map(user_id).transpose()?,
            comment: self.comment,
            at: self.at,
            // The column holds 32 bytes (a check constraint says so); anything else can only
            // be tampering, which reads as a hash that never matches, for `verify` to report.
            hash: AuditHash::from_slice(&self.hash).unwrap_or(AuditHash::from_bytes([0; 32])),
        })
    }
}

impl InstanceRow {
    pub fn into_domain(
        self,
        steps: Vec<StepRow>,
        audit: Vec<AuditRow>,
    ) -> Result<Instance, WorkflowError> {
        Ok(Instance {
            id: InstanceId::new(self.id).map_err(|_| corrupt("instance id", self.id))?,
            template_id: TemplateId::new(self.template_id)
                .map_err(|_| corrupt("template id", self.template_id))?,
            template_version: self.template_version,
            event: EventName::new(self.event.clone()).map_err(|_| corrupt("event", &self.event))?,
            entity_type: EntityType::new(self.entity_type.clone())
                .map_err(|_| corrupt("entity type", &self.entity_type))?,
            entity_id: EntityId::new(self.entity_id)
                .map_err(|_| corrupt("entity id", self.entity_id))?,
            initiated_by: user_id(self.initiated_by)?,
            status: InstanceStatus::parse(&self.status)
                .ok_or_else(|| corrupt("instance status", &self.status))?,
            context: self.context,
            created_at: self.created_at,
            updated_at: self.updated_at,
            completed_at: self.completed_at,
            steps: steps
                .into_iter()
                .map(StepRow::into_domain)
                .collect::<Result<_, _>>()?,
            audit: audit
                .into_iter()
                .map(AuditRow::into_domain)
                .collect::<Result<_, _>>()?,
        })
    }
}

/// An inbox line: the step, then the columns of its instance an inbox shows.
#[derive(Queryable)]
pub struct PendingRow {
    pub step_id: i64,
    pub step_order: i32,
    pub name: String,
    pub approver_user_id: Option<i64>,
    pub approver_role: Option<String>,
    pub activated_at: Option<DateTime<Utc>>,
    pub instance_id: i64,
    pub event: String,
    pub entity_type: String,
    pub entity_id: i64,
}

impl PendingRow {
    pub fn into_domain(self) -> Result<PendingStep, WorkflowError> {
        Ok(PendingStep {
            step_id: StepId::new(self.step_id).map_err(|_| corrupt("step id", self.step_id))?,
            step_order: self.step_order,
            name: self.name,
            approver: approver(self.approver_user_id, self.approver_role)?,
            activated_at: self.activated_at,
            instance_id: InstanceId::new(self.instance_id)
                .map_err(|_| corrupt("instance id", self.instance_id))?,
            event: EventName::new(self.event.clone()).map_err(|_| corrupt("event", &self.event))?,
            entity_type: EntityType::new(self.entity_type.clone())
                .map_err(|_| corrupt("entity type", &self.entity_type))?,
            entity_id: EntityId::new(self.entity_id)
                .map_err(|_| corrupt("entity id", self.entity_id))?,
            on_behalf_of: None,
        })
    }
}
