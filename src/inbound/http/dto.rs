//! Wire formats: request bodies parsed into validated domain requests, and domain values
//! rendered as response JSON. Field-level checks name the field in the error.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use serde_json::{Map, Value};

use super::errors::ApiError;
use crate::domain::WorkflowError;
use crate::domain::model::{
    Approver, AuditEntry, Comment, DecisionRequest, EntityId, EntityType, EventName, Instance,
    InstanceStep, PendingStep, RoleName, StepId, Template, TemplateStep, TemplateUpdate,
    TriggerRequest, UserId, Verdict,
};

/// The fields of one JSON object, taken one by one; unknown fields are refused up front.
pub struct Fields {
    map: Map<String, Value>,
    prefix: String,
}

impl Fields {
    /// Checks that `map` has no field outside `allowed`.
    pub fn new(map: Map<String, Value>, allowed: &[&str], prefix: &str) -> Result<Self, ApiError> {
        if let Some(unknown) = map.keys().find(|k| !allowed.contains(&k.as_str())) {
            return Err(ApiError::validation(
                &format!("{prefix}{unknown}"),
                &format!("is not a known field (expected: {})", allowed.join(", ")),
            ));
        }
        Ok(Self {
            map,
            prefix: prefix.to_owned(),
        })
    }

    fn name(&self, field: &str) -> String {
        format!("{}{}", self.prefix, field)
    }

    fn invalid(&self, field: &str, message: &str) -> ApiError {
        ApiError::validation(&self.name(field), message)
    }

    /// A present, non-null value.
    fn take(&mut self, field: &str) -> Option<Value> {
        self.map.remove(field).filter(|v| !v.is_null())
    }

    fn required(&mut self, field: &str) -> Result<Value, ApiError> {
        self.take(field)
            .ok_or_else(|| self.invalid(field, "is required"))
    }

    /// A required positive integer, as a domain id.
    pub fn id<T>(
        &mut self,
        field: &str,
        make: fn(i64) -> Result<T, WorkflowError>,
    ) -> Result<T, ApiError> {
        let value = self.required(field)?;
        value
            .as_i64()
            .and_then(|n| make(n).ok())
            .ok_or_else(|| self.invalid(field, "must be a positive integer"))
    }

    /// A required string parsed by `make`; its own message is kept.
    pub fn parsed<T>(
        &mut self,
        field: &str,
        make: impl FnOnce(String) -> Result<T, WorkflowError>,
    ) -> Result<T, ApiError> {
        let text = self.string(field)?;
        make(text).map_err(|e| match e {
            WorkflowError::Validation { message, .. } => self.invalid(field, &message),
            other => ApiError::from(other),
        })
    }

    /// A required string.
    pub fn string(&mut self, field: &str) -> Result<String, ApiError> {
        match self.required(field)? {
            Value::String(s) if s.contains('\0') => {
                Err(self.invalid(field, "must not contain NUL characters"))
            }
            Value::String(s) => Ok(s),
            _ => Err(self.invalid(field, "must be a string")),
        }
    }

    /// An optional string parsed by `make`.
    pub fn optional_parsed<T>(
        &mut self,
        field: &str,
        make: impl FnOnce(String) -> Result<T, WorkflowError>,
    ) -> Result<Option<T>, ApiError> {
        if self.map.get(field).is_none_or(Value::is_null) {
            return Ok(None);
        }
        self.parsed(field, make).map(Some)
    }

    /// An optional boolean.
    pub fn optional_bool(&mut self, field: &str) -> Result<Option<bool>, ApiError> {
        match self.take(field) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(b)),
            Some(_) => Err(self.invalid(field, "must be true or false")),
        }
    }

    /// An optional JSON object.
    pub fn optional_object(&mut self, field: &str) -> Result<Option<Map<String, Value>>, ApiError> {
        match self.take(field) {
            None => Ok(None),
            Some(Value::Object(map)) => Ok(Some(map)),
            Some(_) => Err(self.invalid(field, "must be a JSON object")),
        }
    }

    /// An optional JSON array.
    pub fn optional_array(&mut self, field: &str) -> Result<Option<Vec<Value>>, ApiError> {
        match self.take(field) {
            None => Ok(None),
            Some(Value::Array(items)) => Ok(Some(items)),
            Some(_) => Err(self.invalid(field, "must be a JSON array")),
        }
    }

    /// A required JSON object.
    pub fn object(&mut self, field: &str) -> Result<Map<String, Value>, ApiError> {
        self.optional_object(field)?
            .ok_or_else(|| self.invalid(field, "is required"))
    }
}

/// Most top-level keys a context object may have (the body limit bounds its size anyway).
const MAX_CONTEXT_KEYS: usize = 256;

/// `POST /instances`.
pub fn trigger_request(body: Map<String, Value>) -> Result<TriggerRequest, ApiError> {
    let mut f = Fields::new(
        body,
        &[
            "event",
            "entity_type",
            "entity_id",
            "initiated_by",
            "context",
        ],
        "",
    )?;
    let event = f.parsed("event", EventName::new)?;
    let entity_type = f.parsed("entity_type", EntityType::new)?;
    let entity_id = f.id("entity_id", EntityId::new)?;
    let initiated_by = f.id("initiated_by", UserId::new)?;
    let context = f.optional_object("context")?;
    if context.as_ref().is_some_and(|c| c.len() > MAX_CONTEXT_KEYS) {
        return Err(ApiError::validation(
            "context",
            &format!("must have at most {MAX_CONTEXT_KEYS} keys"),
        ));
    }
    let context = context.map(Value::Object);
    if context.as_ref().is_some_and(has_nul) {
        // PostgreSQL can't store NUL in text or jsonb; refuse it here, for every store alike.
        return Err(ApiError::validation(
            "context",
            "must not contain NUL characters",
        ));
    }
    Ok(TriggerRequest {
        event,
        entity_type,
        entity_id,
        initiated_by,
        context,
    })
}

/// Whether any string or key inside a JSON value contains a NUL character.
fn has_nul(value: &Value) -> bool {
    match value {
        Value::String(s) => s.contains('\0'),
        Value::Array(items) => items.iter().any(has_nul),
        Value::Object(map) => map.iter().any(|(k, v)| k.contains('\0') || has_nul(v)),
        _ => false,
    }
}

/// `POST /steps/{id}/approve` and `/reject`.
pub fn decision_request(
    step_id: StepId,
    approve: bool,
    body: Map<String, Value>,
) -> Result<DecisionRequest, ApiError> {
    let mut f = Fields::new(body, &["acted_by_user_id", "comment"], "")?;
    let acted_by = f.id("acted_by_user_id", UserId::new)?;
    let verdict = if approve {
        Verdict::Approve {
            comment: f.optional_parsed("comment", Comment::new)?,
        }
    } else {
        Verdict::Reject {
            comment: f.parsed("comment", Comment::new)?,
        }
    };
    Ok(DecisionRequest {
        step_id,
        acted_by,
        verdict,
    })
}

/// `PUT /templates/{id}`: any of `name`, `is_active`, `steps` (numbered by position).
pub fn template_update(body: Map<String, Value>) -> Result<TemplateUpdate, ApiError> {
    let mut f = Fields::new(body, &["name", "is_active", "steps"], "")?;
    // Lengths are the domain's rule (`machine::validate_template_update`), checked once there.
    let name = f.optional_parsed("name", Ok)?;
    let is_active = f.optional_bool("is_active")?;
    let steps = match f.optional_array("steps")? {
        None => None,
        Some(items) => Some(
            items
                .into_iter()
                .enumerate()
                .map(|(index, item)| template_step(index, item))
                .collect::<Result<Vec<_>, _>>()?,
        ),
    };
    if name.is_none() && is_active.is_none() && steps.is_none() {
        return Err(ApiError::validation(
            "body",
            "must set at least one of name, is_active, steps",
        ));
    }
    Ok(TemplateUpdate {
        name,
        is_active,
        steps,
    })
}

fn template_step(index: usize, item: Value) -> Result<TemplateStep, ApiError> {
    let prefix = format!("steps[{index}].");
    let Value::Object(map) = item else {
        return Err(ApiError::validation(
            &format!("steps[{index}]"),
            "must be a JSON object",
        ));
    };
    let mut f = Fields::new(map, &["name", "approver"], &prefix)?;
    let name = f.string("name")?;
    let approver_map = f.object("approver")?;
    let approver = approver(approver_map, &format!("{prefix}approver."))?;
    Ok(TemplateStep {
        step_order: i32::try_from(index + 1).unwrap_or(i32::MAX),
        name,
        approver,
    })
}

fn approver(map: Map<String, Value>, prefix: &str) -> Result<Approver, ApiError> {
    let mut f = Fields::new(map, &["type", "user_id", "role"], prefix)?;
    match f.string("type")?.as_str() {
        "user" => Ok(Approver::User {
            user_id: f.id("user_id", UserId::new)?,
        }),
        "role" => Ok(Approver::Role {
            role: f.parsed("role", RoleName::new)?,
        }),
        _ => Err(ApiError::validation(
            &format!("{prefix}type"),
            "must be 'user' or 'role'",
        )),
    }
}

/// Times as RFC 3339 UTC with microseconds, as stored.
fn time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

fn approver_json(approver: &Approver) -> Value {
    match approver {
        Approver::User { user_id } => serde_json::json!({"type": "user", "user_id": user_id.get()}),
        Approver::Role { role } => serde_json::json!({"type": "role", "role": role.as_str()}),
    }
}

/// An instance step in responses.
#[derive(Serialize)]
pub struct StepDto {
    id: i64,
    step_order: i32,
    name: String,
    approver: Value,
    eligible_user_ids: Vec<i64>,
    status: &'static str,
    acted_by_user_id: Option<i64>,
    comment: Option<String>,
    acted_at: Option<String>,
    activated_at: Option<String>,
}

impl From<&InstanceStep> for StepDto {
    fn from(s: &InstanceStep) -> Self {
        Self {
            id: s.id.get(),
            step_order: s.step_order,
            name: s.name.clone(),
            approver: approver_json(&s.approver),
            eligible_user_ids: s.eligible_user_ids.iter().map(|u| u.get()).collect(),
            status: s.status.as_str(),
            acted_by_user_id: s.acted_by_user_id.map(UserId::get),
            comment: s.comment.clone(),
            acted_at: s.acted_at.map(time),
            activated_at: s.activated_at.map(time),
        }
    }
}

/// An audit entry in responses.
#[derive(Serialize)]
pub struct AuditDto {
    id: i64,
    instance_id: i64,
    step_id: Option<i64>,
    action: &'static str,
    actor_user_id: Option<i64>,
    comment: Option<String>,
    at: String,
}

impl From<&AuditEntry> for AuditDto {
    fn from(a: &AuditEntry) -> Self {
        Self {
            id: a.id,
            instance_id: a.instance_id.get(),
            step_id: a.step_id.map(StepId::get),
            action: a.action.as_str(),
            actor_user_id: a.actor_user_id.map(UserId::get),
            comment: a.comment.clone(),
            at: time(a.at),
        }
    }
}

/// An instance in responses, with its steps and audit.
#[derive(Serialize)]
pub struct InstanceDto {
    id: i64,
    template_id: i64,
    template_version: i32,
    event: String,
    entity_type: String,
    entity_id: i64,
    initiated_by: i64,
    status: &'static str,
    context: Option<Value>,
    created_at: String,
    updated_at: String,
    completed_at: Option<String>,
    steps: Vec<StepDto>,
    audit: Vec<AuditDto>,
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
            audit: i.audit.iter().map(AuditDto::from).collect(),
        }
    }
}

/// A template step in responses.
#[derive(Serialize)]
pub struct TemplateStepDto {
    step_order: i32,
    name: String,
    approver: Value,
}

/// A template in responses.
#[derive(Serialize)]
pub struct TemplateDto {
    id: i64,
    name: String,
    event: String,
    entity_type: String,
    version: i32,
    is_active: bool,
    steps: Vec<TemplateStepDto>,
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
            steps: t
                .steps
                .iter()
                .map(|s| TemplateStepDto {
                    step_order: s.step_order,
                    name: s.name.clone(),
                    approver: approver_json(&s.approver),
                })
                .collect(),
        }
    }
}

/// An inbox entry in responses.
#[derive(Serialize)]
pub struct PendingStepDto {
    step_id: i64,
    step_order: i32,
    name: String,
    approver: Value,
    activated_at: Option<String>,
    instance_id: i64,
    event: String,
    entity_type: String,
    entity_id: i64,
}

impl From<&PendingStep> for PendingStepDto {
    fn from(p: &PendingStep) -> Self {
        Self {
            step_id: p.step_id.get(),
            step_order: p.step_order,
            name: p.name.clone(),
            approver: approver_json(&p.approver),
            activated_at: p.activated_at.map(time),
            instance_id: p.instance_id.get(),
            event: p.event.to_string(),
            entity_type: p.entity_type.to_string(),
            entity_id: p.entity_id.get(),
        }
    }
}
