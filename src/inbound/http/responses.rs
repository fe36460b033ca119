//! Driving adapter, HTTP responses: the wire formats of answers, as adapter DTOs built from
//! domain values (the domain itself knows nothing of JSON). Field order is the order clients
//! have always received; times are RFC 3339 UTC with microseconds, as stored.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;
use warp::Reply;
use warp::http::StatusCode;
use warp::reply::Response;

use super::schemas::{ApproverSchema, AuditActionSchema, InstanceStatusSchema, StepStatusSchema};
use crate::domain::model::{
    Approver, AuditEntry, Instance, InstanceStep, PendingStep, Quorum, StepId, Template, UserId,
};

/// `body` as JSON with `status`.
pub fn json<T: Serialize>(status: StatusCode, body: &T) -> Response {
    warp::reply::with_status(warp::reply::json(body), status).into_response()
}

pub(crate) fn time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// An approver: `{"type": "user", "user_id": 2}` or `{"role": "sales_manager", "type": "role"}`
/// (keys in alphabetical order, as they have always been sent).
#[derive(Serialize)]
#[serde(untagged)]
pub enum ApproverDto {
    User { r#type: &'static str, user_id: i64 },
    Role { role: String, r#type: &'static str },
}

/// Documented as the approver of requests: the same two shapes.
impl utoipa::PartialSchema for ApproverDto {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        ApproverSchema::schema()
    }
}

impl ToSchema for ApproverDto {
    fn name() -> std::borrow::Cow<'static, str> {
        ApproverSchema::name()
    }

    fn schemas(
        schemas: &mut Vec<(
            String,
            utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>,
        )>,
    ) {
        ApproverSchema::schemas(schemas);
    }
}

impl From<&Approver> for ApproverDto {
    fn from(approver: &Approver) -> Self {
        match approver {
            Approver::User { user_id } => Self::User {
                r#type: "user",
                user_id: user_id.get(),
            },
            Approver::Role { role } => Self::Role {
                role: role.to_string(),
                r#type: "role",
            },
        }
    }
}

/// An instance step.
#[derive(Serialize, ToSchema)]
#[schema(as = Step)]
pub struct StepDto {
    id: i64,
    step_order: i32,
    name: String,
    approver: ApproverDto,
    eligible_user_ids: Vec<i64>,
    #[schema(value_type = StepStatusSchema)]
    status: &'static str,
    acted_by_user_id: Option<i64>,
    comment: Option<String>,
    #[schema(value_type = Option<String>, format = DateTime)]
    acted_at: Option<String>,
    #[schema(value_type = Option<String>, format = DateTime)]
    activated_at: Option<String>,
    /// Approvals the step needs.
    quorum: u32,
    /// Approvals given so far, oldest first.
    approvals: Vec<ApprovalDto>,
    /// When the step becomes overdue: set when a step with `due_in` is activated; `null`
    /// otherwise.
    #[schema(value_type = Option<String>, format = DateTime)]
    due_at: Option<String>,
}

/// One approval recorded on a step.
#[derive(Serialize, ToSchema)]
#[schema(as = Approval)]
pub struct ApprovalDto {
    /// Whose approval it is (a delegate's approval counts as its delegator's).
    user_id: i64,
    comment: Option<String>,
    #[schema(value_type = String, format = DateTime)]
    at: String,
    /// The delegate who gave it for `user_id`; absent when `user_id` gave it (so answers
    /// without delegation are as they always were).
    #[serde(skip_serializing_if = "Option::is_none")]
    acted_by_user_id: Option<i64>,
}

impl From<&InstanceStep> for StepDto {
    fn from(s: &InstanceStep) -> Self {
        Self {
            id: s.id.get(),
            step_order: s.step_order,
            name: s.name.clone(),
            approver: ApproverDto::from(&s.approver),
            eligible_user_ids: s.eligible_user_ids.iter().map(|u| u.get()).collect(),
            status: s.status.as_str(),
            acted_by_user_id: s.acted_by_user_id.map(UserId::get),
            comment: s.comment.clone(),
            acted_at: s.acted_at.map(time),
            activated_at: s.activated_at.map(time),
            quorum: s.quorum,
            due_at: s.due_at.map(time),
            approvals: s
                .approvals
                .iter()
                .map(|a| ApprovalDto {
                    user_id: a.user_id.get(),
                    comment: a.comment.clone(),
                    at: time(a.at),
                    acted_by_user_id: a.acted_by.map(UserId::get),
                })
                .collect(),
        }
    }
}

/// An audit entry, with its chain hash in hexadecimal.
#[derive(Serialize, ToSchema)]
#[schema(as = AuditEntry)]
pub struct AuditDto {
    id: i64,
    instance_id: i64,
    step_id: Option<i64>,
    #[schema(value_type = AuditActionSchema)]
    action: &'static str,
    actor_user_id: Option<i64>,
    /// The delegator the actor acted for, as its delegate; absent otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    on_behalf_of: Option<i64>,
    comment: Option<String>,
    #[schema(format = DateTime)]
    at: String,
    hash: String,
}

impl From<&AuditEntry> for AuditDto {
    fn from(a: &AuditEntry) -> Self {
        Self {
            id: a.id,
            instance_id: a.instance_id.get(),
            step_id: a.step_id.map(StepId::get),
            action: a.action.as_str(),
            actor_user_id: a.actor_user_id.map(UserId::get),
            on_behalf_of: a.on_behalf_of.map(UserId::get),
            comment: a.comment.clone(),
            at: time(a.at),
            hash: a.hash.to_hex(),
        }
    }
}

/// An instance, with its steps and audit (a search's items leave the audit key out).
#[derive(Serialize, ToSchema)]
#[schema(as = Instance)]
pub struct InstanceDto {
    id: i64,
    template_id: i64,
    template_version: i32,
    event: String,
    entity_type: String,
    entity_id: i64,
    initiated_by: i64,
    #[schema(value_type = InstanceStatusSchema)]
    status: &'static str,
    /// The free-form context given at trigger time, unchanged; `null` when none was given.
    #[schema(value_type = Option<Object>)]
    context: Option<Value>,
    #[schema(format = DateTime)]
    created_at: String,
    #[schema(format = DateTime)]
    updated_at: String,
    #[schema(value_type = Option<String>, format = DateTime)]
    completed_at: Option<String>,
    steps: Vec<StepDto>,
    /// The audit trail, oldest first; left out of a search's items.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Vec<AuditDto>)]
    audit: Option<Vec<AuditDto>>,
}

impl InstanceDto {
    /// The instance without the `audit` key, as a search lists it.
    pub fn without_audit(instance: &Instance) -> Self {
        Self {
            audit: None,
            ..Self::from(instance)
        }
    }
}

impl From<&Instance> for InstanceDto {
    fn from(i: &Instance) -> Self {
        Self {
            id: i.id.get(),
            template_id: i.template_id.get(),
            template_version: i.template_version,
            event: i.event.to_string(),
            entity_type: i.entity_type.to_string(),
            entity_id: i.entity_id.get(),
            initiated_by: i.initiated_by.get(),
            status: i.status.as_str(),
            context: i.context.clone(),
            created_at: time(i.created_at),
            updated_at: time(i.updated_at),
            completed_at: i.completed_at.map(time),
            steps: i.steps.iter().map(StepDto::from).collect(),
            audit: Some(i.audit.iter().map(AuditDto::from).collect()),
        }
    }
}

/// A template step.
#[derive(Serialize, ToSchema)]
#[schema(as = TemplateStep)]
pub struct TemplateStepDto {
    step_order: i32,
    name: String,
    approver: ApproverDto,
    /// A number, or `"all"`.
    #[schema(value_type = crate::inbound::http::schemas::QuorumSchema)]
    quorum: Value,
    /// The step's condition; absent when the step always applies.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<crate::inbound::http::schemas::ConditionSchema>)]
    when: Option<String>,
    /// How long the step may await action; absent when it has no due date.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<crate::inbound::http::schemas::DueInSchema>)]
    due_in: Option<String>,
    /// What happens when it is overdue; absent when it has no due date.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<crate::inbound::http::schemas::OnOverdueSchema>)]
    on_overdue: Option<&'static str>,
    /// Whom an `escalate` rule adds; absent for the other rules.
    #[serde(skip_serializing_if = "Option::is_none")]
    escalate_to: Option<ApproverDto>,
}

fn quorum(quorum: Quorum) -> Value {
    match quorum {
        Quorum::Count(n) => Value::from(n),
        Quorum::All => Value::from("all"),
    }
}

/// A template, with its steps.
#[derive(Serialize, ToSchema)]
#[schema(as = Template)]
pub struct TemplateDto {
    id: i64,
    name: String,
    event: String,
    entity_type: String,
    version: i32,
    is_active: bool,
    forbid_self_approval: bool,
    steps: Vec<TemplateStepDto>,
}

/// A list of templates.
#[derive(Serialize, ToSchema)]
#[schema(as = TemplateList)]
pub struct TemplateListDto {
    pub items: Vec<TemplateDto>,
}

impl From<&Template> for TemplateDto {
    fn from(t: &Template) -> Self {
        Self {
            id: t.id.get(),
            name: t.name.clone(),
            event: t.event.to_string(),
            entity_type: t.entity_type.to_string(),
            version: t.version,
            is_active: t.is_active,
            forbid_self_approval: t.forbid_self_approval,
            steps: t
                .steps
                .iter()
                .map(|s| TemplateStepDto {
                    step_order: s.step_order,
                    name: s.name.clone(),
                    approver: ApproverDto::from(&s.approver),
                    quorum: quorum(s.quorum),
                    when: s.when.as_ref().map(|w| w.as_str().to_owned()),
                    due_in: s.due.as_ref().map(|d| d.due_in.as_str().to_owned()),
                    on_overdue: s.due.as_ref().map(|d| d.on_overdue.as_str()),
                    escalate_to: s
                        .due
                        .as_ref()
                        .and_then(|d| d.on_overdue.escalate_to())
                        .map(ApproverDto::from),
                })
                .collect(),
        }
    }
}

/// An inbox entry.
#[derive(Serialize, ToSchema)]
#[schema(as = PendingStep)]
pub struct PendingStepDto {
    step_id: i64,
    step_order: i32,
    name: String,
    approver: ApproverDto,
    #[schema(value_type = Option<String>, format = DateTime)]
    activated_at: Option<String>,
    instance_id: i64,
    event: String,
    entity_type: String,
    entity_id: i64,
    /// The delegator whose step it is, when the user acts on it as their delegate; absent
    /// for the user's own.
    #[serde(skip_serializing_if = "Option::is_none")]
    on_behalf_of: Option<i64>,
}

impl From<&PendingStep> for PendingStepDto {
    fn from(p: &PendingStep) -> Self {
        Self {
            step_id: p.step_id.get(),
            step_order: p.step_order,
            name: p.name.clone(),
            approver: ApproverDto::from(&p.approver),
            activated_at: p.activated_at.map(time),
            instance_id: p.instance_id.get(),
            event: p.event.to_string(),
            entity_type: p.entity_type.to_string(),
            entity_id: p.entity_id.get(),
            on_behalf_of: p.on_behalf_of.map(UserId::get),
        }
    }
}

/// A page of the inbox.
#[derive(Serialize, ToSchema)]
#[schema(as = Inbox)]
pub struct InboxDto {
    pub items: Vec<PendingStepDto>,
    /// Where the next page starts (pass it as `after`); `null` on the last page.
    pub next: Option<String>,
}

/// The health answer.
#[derive(Serialize, ToSchema)]
#[schema(as = Health)]
pub struct HealthDto {
    pub status: &'static str,
}
