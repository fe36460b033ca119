//! Driving adapter, HTTP: `GET` and `PUT /api/v1/workflow/templates/{id}`, reading and changing
//! a template; and the body types of a template and its steps, which creating a template and
//! publishing a version parse too.

use std::sync::Arc;

use serde::Deserialize;
use serde_json::Value;
use utoipa::ToSchema;
use warp::http::StatusCode;
use warp::reply::Response;

use super::{finish, path_id};
use crate::domain::model::{
    Approver, Condition, DueIn, DueRule, OnOverdue, Quorum, RoleName, TemplateId, TemplateStep,
    TemplateUpdate, UserId,
};
use crate::domain::ports::WorkflowUseCases;
use crate::inbound::http::body::JsonObject;
use crate::inbound::http::errors::ApiError;
use crate::inbound::http::requests::{
    Array, Flag, Id, Name, Object, Refusal, Text, parse, positive_whole_number,
};
use crate::inbound::http::responses::{TemplateDto, json};

/// The update body (of `PUT` and of a new version): any of `name`, `is_active`, `steps`
/// (numbered by position), `forbid_self_approval`. Lengths and step counts are the domain's
/// rules, checked once there.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = TemplateUpdateRequest)]
pub struct TemplateUpdateBody {
    #[schema(value_type = Option<crate::inbound::http::schemas::Label>)]
    name: Option<Text>,
    is_active: Option<Flag>,
    /// The steps in order (numbered by position).
    #[schema(value_type = Option<crate::inbound::http::schemas::StepList>)]
    steps: Option<Array>,
    forbid_self_approval: Option<Flag>,
}

impl TemplateUpdateBody {
    /// The domain update, with each step parsed in turn (`steps[i].…` in errors).
    pub fn try_into_domain(self) -> Result<TemplateUpdate, ApiError> {
        let update = TemplateUpdate {
            name: self.name.map(|n| n.0),
            is_active: self.is_active.map(|f| f.0),
            forbid_self_approval: self.forbid_self_approval.map(|f| f.0),
            steps: self.steps.map(parse_steps).transpose()?,
        };
        let nothing = update.name.is_none()
            && update.is_active.is_none()
            && update.forbid_self_approval.is_none()
            && update.steps.is_none();
        if nothing {
            return Err(ApiError::validation(
                "body",
                "must set at least one of name, is_active, steps, forbid_self_approval",
            ));
        }
        Ok(update)
    }
}

/// A template's step list, each step parsed in turn (`steps[i].…` in errors) and numbered by
/// its position.
pub(super) fn parse_steps(Array(items): Array) -> Result<Vec<TemplateStep>, ApiError> {
    items
        .into_iter()
        .enumerate()
        .map(|(index, item)| StepBody::parse(index, item))
        .collect()
}

/// One step of the update body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = StepRequest)]
pub(crate) struct StepBody {
    #[schema(value_type = crate::inbound::http::schemas::Label)]
    name: Text,
    #[schema(value_type = crate::inbound::http::schemas::ApproverSchema)]
    approver: Object,
    /// Left raw: a number or the word "all" (absent or `null`: 1).
    #[serde(default)]
    #[schema(value_type = Option<crate::inbound::http::schemas::QuorumSchema>)]
    quorum: Value,
    /// The step applies only when this CEL expression over the trigger's `context` is true
    /// (e.g. `context.discount_percent > 10`); absent or `null`: always. Checked when the
    /// template is saved.
    #[schema(value_type = Option<crate::inbound::http::schemas::ConditionSchema>)]
    when: Option<Name<Condition>>,
    /// How long the step may await action once activated: an ISO 8601 duration of days,
    /// hours, minutes and seconds (`PT48H`, `P2D`); absent or `null`: no due date.
    #[schema(value_type = Option<crate::inbound::http::schemas::DueInSchema>)]
    due_in: Option<Text>,
    /// What happens when the step is overdue: `notify` (the default), `escalate` or `reject`;
    /// only with `due_in`.
    #[schema(value_type = Option<crate::inbound::http::schemas::OnOverdueSchema>)]
    on_overdue: Option<Text>,
    /// Whom an `escalate` rule adds to the step's eligible users: `{"user_id": N}` or
    /// `{"role": "name"}` (a `type` as in `approver` may be given too); required with
    /// `escalate`, refused otherwise.
    #[schema(value_type = Option<crate::inbound::http::schemas::EscalateToSchema>)]
    escalate_to: Option<Object>,
}

impl StepBody {
    fn parse(index: usize, item: Value) -> Result<TemplateStep, ApiError> {
        let prefix = format!("steps[{index}]");
        // `null` too is "not an object" here, as it always was (a step can't be absent).
        let Value::Object(map) = item else {
            return Err(ApiError::validation(&prefix, "must be a JSON object"));
        };
        let step = parse::<StepBody>(map, &format!("{prefix}."))?;
        let approver = parse::<ApproverBody>(step.approver.0, &format!("{prefix}.approver."))?
            .try_into_domain(&format!("{prefix}.approver."))?;
        let quorum =
            parse_quorum(step.quorum).map_err(|r| r.for_field(&format!("{prefix}.quorum")))?;
        let due = parse_due(&prefix, step.due_in, step.on_overdue, step.escalate_to)?;
        Ok(TemplateStep {
            step_order: i32::try_from(index + 1).unwrap_or(i32::MAX),
            name: step.name.0,
            approver,
            quorum,
            when: step.when.map(|w| w.0),
            due,
        })
    }
}

/// A step's due date rule from its three fields: `on_overdue` and `escalate_to` only with
/// `due_in`; `escalate_to` exactly when `on_overdue` is `escalate`.
fn parse_due(
    prefix: &str,
    due_in: Option<Text>,
    on_overdue: Option<Text>,
    escalate_to: Option<Object>,
) -> Result<Option<DueRule>, ApiError> {
    let field = |name: &str| format!("{prefix}.{name}");
    let Some(Text(due_in)) = due_in else {
        if on_overdue.is_some() || escalate_to.is_some() {
            return Err(ApiError::validation(
                &field("due_in"),
                "is required with on_overdue or escalate_to",
            ));
        }
        return Ok(None);
    };
    let due_in = DueIn::parse(&due_in)
        .map_err(|message| ApiError::validation(&field("due_in"), &message))?;
    let rule = on_overdue.as_ref().map_or("notify", |t| t.0.as_str());
    let on_overdue = match (rule, escalate_to) {
        ("notify" | "reject", Some(_)) => {
            return Err(ApiError::validation(
                &field("escalate_to"),
                "is allowed only with on_overdue \"escalate\"",
            ));
        }
        ("notify", None) => OnOverdue::Notify,
        ("reject", None) => OnOverdue::Reject,
        ("escalate", None) => {
            return Err(ApiError::validation(
                &field("escalate_to"),
                "is required with on_overdue \"escalate\"",
            ));
        }
        ("escalate", Some(Object(mut to))) => {
            let prefix = format!("{prefix}.escalate_to.");
            // The approver's own shape, its `type` implied by the one field given.
            if !to.contains_key("type") {
                let kind = match (to.get("user_id"), to.get("role")) {
                    (Some(_), Some(_)) => {
                        return Err(ApiError::validation(
                            &field("escalate_to"),
                            "must name a user_id or a role, not both",
                        ));
                    }
                    (Some(_), None) => "user",
                    (None, Some(_)) => "role",
                    (None, None) => {
                        return Err(ApiError::validation(
                            &field("escalate_to"),
                            "must name a user_id or a role",
                        ));
                    }
                };
                to.insert("type".to_owned(), Value::from(kind));
            }
            let to = parse::<ApproverBody>(to, &prefix)?.try_into_domain(&prefix)?;
            OnOverdue::Escalate { to }
        }
        _ => {
            return Err(ApiError::validation(
                &field("on_overdue"),
                "must be \"notify\", \"escalate\" or \"reject\"",
            ));
        }
    };
    Ok(Some(DueRule { due_in, on_overdue }))
}

/// A step's quorum: a positive integer or `"all"`; absent or `null` is 1. The range (and
/// whether the approver allows more than one) is the domain's rule, checked there.
fn parse_quorum(value: Value) -> Result<Quorum, Refusal> {
    const WANTED: &str = "must be a positive integer or \"all\"";
    match value {
        Value::Null => Ok(Quorum::default()),
        Value::String(word) if word == "all" => Ok(Quorum::All),
        Value::Number(_) => positive_whole_number(&value)
            .map(|n| Quorum::Count(u32::try_from(n).unwrap_or(u32::MAX)))
            .ok_or_else(|| Refusal::new(WANTED)),
        _ => Err(Refusal::new(WANTED)),
    }
}

/// An approver: `{"type": "user", "user_id": N}` or `{"type": "role", "role": "name"}`. The
/// field the other type calls for is refused like any unknown field (`null` counts as absent,
/// as for every optional field): a client that sends both meant something the API can't do.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ApproverBody {
    r#type: Text,
    // Left raw: which of the two is required, and which refused, depends on the type.
    user_id: Value,
    role: Value,
}

impl ApproverBody {
    fn try_into_domain(self, prefix: &str) -> Result<Approver, ApiError> {
        let field = |name: &str| format!("{prefix}{name}");
        // `extra`, the other type's field, must be absent for a `kind` approver.
        let refuse = |extra: &Value, name: &str, kind: &str, wanted: &str| {
            if extra.is_null() {
                return Ok(());
            }
            Err(Refusal::new(format!(
                "is not a known field of a {kind} approver (expected: type, {wanted})"
            ))
            .for_field(&field(name)))
        };
        match self.r#type.0.as_str() {
            "user" => {
                refuse(&self.role, "role", "user", "user_id")?;
                Id::<UserId>::try_from(self.user_id)
                    .map(|id| Approver::User { user_id: id.0 })
                    .map_err(|r| r.for_field(&field("user_id")))
            }
            "role" => {
                refuse(&self.user_id, "user_id", "role", "role")?;
                Name::<RoleName>::try_from(self.role)
                    .map(|name| Approver::Role { role: name.0 })
                    .map_err(|r| r.for_field(&field("role")))
            }
            _ => Err(Refusal::new("must be 'user' or 'role'").for_field(&field("type"))),
        }
    }
}

/// `GET /api/v1/workflow/templates/{id}`
#[utoipa::path(
    get,
    path = "/api/v1/workflow/templates/{id}",
    tag = "templates",
    operation_id = "get_template",
    summary = "Read a template",
    params(
        ("id" = crate::inbound::http::schemas::PathId, Path, description = "The template's id."),
    ),
    responses(
        (status = 200, description = "The template at its current version.", body = crate::inbound::http::responses::TemplateDto),
        (status = 404, description = "`not_found`: no such template.", body = crate::inbound::http::errors::ErrorBody),
    )
)]
#[tracing::instrument(
    name = "request",
    skip_all,
    fields(method = "GET", route = "/api/v1/workflow/templates/{id}", status = tracing::field::Empty)
)]
pub async fn template<S: WorkflowUseCases>(raw_id: String, service: Arc<S>) -> Response {
    let result: Result<_, ApiError> = async {
        let id = path_id(&raw_id, "template", TemplateId::new)?;
        let template = service.template(id).await?;
        Ok(json(StatusCode::OK, &TemplateDto::from(&template)))
    }
    .await;
    finish(result)
}

/// `PUT /api/v1/workflow/templates/{id}`
#[utoipa::path(
    put,
    path = "/api/v1/workflow/templates/{id}",
    tag = "templates",
    operation_id = "update_template",
    summary = "Change a template that no active instance uses (a new version)",
    params(
        ("id" = crate::inbound::http::schemas::PathId, Path, description = "The template's id."),
    ),
    request_body(content = TemplateUpdateBody, content_type = "application/json"),
    responses(
        (status = 200, description = "The template at its new version.", body = crate::inbound::http::responses::TemplateDto),
        (status = 404, description = "`not_found`: no such template.", body = crate::inbound::http::errors::ErrorBody),
        (status = 409, description = "`template_in_use` or `template_conflict`.", body = crate::inbound::http::errors::ErrorBody),
        (status = 422, description = "`validation_failed`.", body = crate::inbound::http::errors::ErrorBody),
    )
)]
#[tracing::instrument(
    name = "request",
    skip_all,
    fields(method = "PUT", route = "/api/v1/workflow/templates/{id}", status = tracing::field::Empty)
)]
pub async fn update_template<S: WorkflowUseCases>(
    raw_id: String,
    service: Arc<S>,
    body: JsonObject,
) -> Response {
    let result: Result<_, ApiError> = async {
        let id = path_id(&raw_id, "template", TemplateId::new)?;
        let update = parse::<TemplateUpdateBody>(body, "")?.try_into_domain()?;
        let template = service.update_template(id, update).await?;
        Ok(json(StatusCode::OK, &TemplateDto::from(&template)))
    }
    .await;
    finish(result)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn update(body: Value) -> Result<TemplateUpdate, String> {
        let Value::Object(map) = body else {
            panic!("not an object")
        };
        parse::<TemplateUpdateBody>(map, "")
            .and_then(TemplateUpdateBody::try_into_domain)
            .map_err(|e| e.message)
    }

    /// The due date rule of a one-step update with `fields` added to its step, or the 422's
    /// field and message.
    fn due(fields: Value) -> Result<Option<DueRule>, (String, String)> {
        let mut step = json!({"name": "A", "approver": {"type": "user", "user_id": 2}});
        for (key, value) in fields.as_object().unwrap() {
            step[key] = value.clone();
        }
        let Value::Object(map) = json!({"steps": [step]}) else {
            unreachable!()
        };
        parse::<TemplateUpdateBody>(map, "")
            .and_then(TemplateUpdateBody::try_into_domain)
            .map(|u| u.steps.unwrap()[0].due.clone())
            .map_err(|e| {
                // "Field 'steps[0].due_in' must ...": the field is the first quoted part.
                let field = e.message.split('\'').nth(1).unwrap_or_default().to_owned();
                (field, e.message)
            })
    }

    fn refused_field(fields: Value) -> String {
        due(fields.clone())
            .map(|rule| panic!("{fields} was accepted as {rule:?}"))
            .unwrap_err()
            .0
    }

    #[test]
    fn a_due_date_rule_is_read_with_its_default() {
        assert_eq!(due(json!({})), Ok(None));
        assert_eq!(due(json!({"due_in": null, "on_overdue": null})), Ok(None));
        let rule = due(json!({"due_in": "PT48H"})).unwrap().unwrap();
        assert_eq!(rule.due_in.seconds(), 48 * 3600);
        assert_eq!(rule.on_overdue, OnOverdue::Notify);
        let rule = due(json!({"due_in": "P2D", "on_overdue": "reject"}))
            .unwrap()
            .unwrap();
        assert_eq!(rule.on_overdue, OnOverdue::Reject);
        let role = |name: &str| Approver::Role {
            role: RoleName::new(name).unwrap(),
        };
        for escalate_to in [
            json!({"role": "director"}),
            json!({"type": "role", "role": "director"}),
        ] {
            let rule = due(
                json!({"due_in": "PT2S", "on_overdue": "escalate", "escalate_to": escalate_to}),
            )
            .unwrap()
            .unwrap();
            assert_eq!(
                rule.on_overdue,
                OnOverdue::Escalate {
                    to: role("director")
                }
            );
        }
        let rule =
            due(json!({"due_in": "PT2S", "on_overdue": "escalate", "escalate_to": {"user_id": 9}}))
                .unwrap()
                .unwrap();
        assert_eq!(
            rule.on_overdue.escalate_to(),
            Some(&Approver::User {
                user_id: UserId::new(9).unwrap()
            })
        );
    }

    #[test]
    fn each_bad_due_date_rule_names_its_field() {
        let cases = [
            (json!({"due_in": "48 hours"}), "steps[0].due_in"),
            (json!({"due_in": "P1M"}), "steps[0].due_in"),
            (json!({"due_in": "PT0S"}), "steps[0].due_in"),
            (json!({"due_in": 48}), "steps[0].due_in"),
            (json!({"on_overdue": "reject"}), "steps[0].due_in"),
            (json!({"escalate_to": {"user_id": 2}}), "steps[0].due_in"),
            (
                json!({"due_in": "PT1H", "on_overdue": "shout"}),
                "steps[0].on_overdue",
            ),
            (
                json!({"due_in": "PT1H", "on_overdue": "escalate"}),
                "steps[0].escalate_to",
            ),
            (
                json!({"due_in": "PT1H", "on_overdue": "reject", "escalate_to": {"user_id": 2}}),
                "steps[0].escalate_to",
            ),
            (
                json!({"due_in": "PT1H", "escalate_to": {"user_id": 2}}),
                "steps[0].escalate_to",
            ),
            (
                json!({"due_in": "PT1H", "on_overdue": "escalate", "escalate_to": {"user_id": 2, "role": "x"}}),
                "steps[0].escalate_to",
            ),
            (
                json!({"due_in": "PT1H", "on_overdue": "escalate", "escalate_to": {}}),
                "steps[0].escalate_to",
            ),
            (
                json!({"due_in": "PT1H", "on_overdue": "escalate", "escalate_to": {"role": "x", "team": 1}}),
                "steps[0].escalate_to.team",
            ),
            (
                json!({"due_in": "PT1H", "on_overdue": "escalate", "escalate_to": {"user_id": 0}}),
                "steps[0].escalate_to.user_id",
            ),
        ];
        for (fields, field) in cases {
            assert_eq!(refused_field(fields.clone()), field, "{fields}");
        }
    }

    #[test]
    fn a_quorum_is_a_positive_whole_number_or_all() {
        assert_eq!(parse_quorum(json!(3)).ok(), Some(Quorum::Count(3)));
        // 716.0 is the integer 716, as JSON Schema (and the API's document) counts it.
        assert_eq!(parse_quorum(json!(716.0)).ok(), Some(Quorum::Count(716)));
        assert_eq!(parse_quorum(json!("all")).ok(), Some(Quorum::All));
        assert_eq!(parse_quorum(json!(null)).ok(), Some(Quorum::default()));
        for refused in [
            json!(0),
            json!(-2),
            json!(2.5),
            json!(0.0),
            json!("2"),
            json!(true),
        ] {
            assert!(
                parse_quorum(refused.clone()).is_err(),
                "{refused} was accepted"
            );
        }
    }

    #[test]
    fn a_condition_is_a_non_blank_string_or_absent() {
        let when = |value: Value| {
            update(json!({"steps": [
                {"name": "A", "approver": {"type": "user", "user_id": 2}, "when": value}
            ]}))
            .map(|u| u.steps.unwrap()[0].when.clone())
        };
        assert_eq!(
            when(json!("context.amount > 10")),
            Ok(Some(Condition::new("context.amount > 10").unwrap()))
        );
        assert_eq!(when(json!(null)), Ok(None));
        // Whether it parses is the evaluator's to say, later; here only its shape counts.
        assert_eq!(
            when(json!(5)),
            Err("Field 'steps[0].when' must be a string.".to_owned())
        );
        assert_eq!(
            when(json!("  ")),
            Err("Field 'steps[0].when' must be 1 to 1000 characters, not blank.".to_owned())
        );
        assert_eq!(
            when(json!("x".repeat(1001))),
            Err("Field 'steps[0].when' must be 1 to 1000 characters, not blank.".to_owned())
        );
    }

    #[test]
    fn forbid_self_approval_alone_is_a_change() {
        let update = update(json!({"forbid_self_approval": true})).unwrap();
        assert_eq!(
            update,
            TemplateUpdate {
                name: None,
                is_active: None,
                forbid_self_approval: Some(true),
                steps: None,
            }
        );
    }

    #[test]
    fn steps_are_numbered_by_position() {
        let update = update(json!({
            "is_active": false,
            "steps": [
                {"name": "A", "approver": {"type": "user", "user_id": 2}},
                {"name": "B", "approver": {"type": "role", "role": "sales_manager"}}
            ]
        }))
        .unwrap();
        assert_eq!(update.name, None);
        assert_eq!(update.is_active, Some(false));
        assert_eq!(update.forbid_self_approval, None);
        let steps = update.steps.unwrap();
        assert_eq!(steps[0].step_order, 1);
        assert_eq!(
            steps[0].approver,
            Approver::User {
                user_id: UserId::new(2).unwrap()
            }
        );
        assert_eq!(steps[1].step_order, 2);
        assert_eq!(steps[1].name, "B");
        assert_eq!(
            steps[1].approver,
            Approver::Role {
                role: RoleName::new("sales_manager").unwrap()
            }
        );
    }

    #[test]
    fn the_field_the_type_does_not_call_for_is_refused() {
        let step = |approver: Value| json!({"steps": [{"name": "A", "approver": approver}]});
        assert_eq!(
            update(step(json!({"type": "role", "role": "x", "user_id": 1}))),
            Err(
                "Field 'steps[0].approver.user_id' is not a known field of a role approver \
                 (expected: type, role)."
                    .to_owned()
            )
        );
        assert_eq!(
            update(step(json!({"type": "user", "user_id": 1, "role": "x"}))),
            Err(
                "Field 'steps[0].approver.role' is not a known field of a user approver \
                 (expected: type, user_id)."
                    .to_owned()
            )
        );
        // `null` is absent, as for any optional field.
        let update = update(step(json!({"type": "role", "role": "x", "user_id": null}))).unwrap();
        assert!(matches!(
            update.steps.unwrap()[0].approver,
            Approver::Role { .. }
        ));
    }

    #[test]
    fn each_fault_has_the_contracts_message() {
        let cases = [
            (
                json!({}),
                "Field 'body' must set at least one of name, is_active, steps, \
                 forbid_self_approval.",
            ),
            (
                json!({"version": 7}),
                "Field 'version' is not a known field (expected: name, is_active, steps, \
                 forbid_self_approval).",
            ),
            (
                json!({"forbid_self_approval": 1}),
                "Field 'forbid_self_approval' must be true or false.",
            ),
            (json!({"name": 1}), "Field 'name' must be a string."),
            (
                json!({"is_active": "yes"}),
                "Field 'is_active' must be true or false.",
            ),
            (
                json!({"steps": "none"}),
                "Field 'steps' must be a JSON array.",
            ),
            (
                json!({"steps": [1]}),
                "Field 'steps[0]' must be a JSON object.",
            ),
            (
                json!({"steps": [null]}),
                "Field 'steps[0]' must be a JSON object.",
            ),
            (
                json!({"steps": [{"name": "A", "approver": {"type": "group", "group": "x"}}]}),
                "Field 'steps[0].approver.group' is not a known field (expected: type, \
                 user_id, role).",
            ),
            (
                json!({"steps": [{"name": "A", "approver": {"type": "wizard"}}]}),
                "Field 'steps[0].approver.type' must be 'user' or 'role'.",
            ),
            (
                json!({"steps": [{"name": "A", "approver": {"type": 1}}]}),
                "Field 'steps[0].approver.type' must be a string.",
            ),
            (
                json!({"steps": [{"name": "A", "approver": {"type": "user"}}]}),
                "Field 'steps[0].approver.user_id' is required.",
            ),
            (
                json!({"steps": [{"name": "A", "approver": {"type": "role", "role": "Big"}}]}),
                "Field 'steps[0].approver.role' must be 1 to 64 characters of a-z, 0-9, '_', \
                 '.' or '-', starting with a letter.",
            ),
            (
                json!({"steps": [{"approver": {"type": "user", "user_id": 1}}]}),
                "Field 'steps[0].name' is required.",
            ),
            (
                json!({"steps": [{"name": "A"}]}),
                "Field 'steps[0].approver' is required.",
            ),
            (
                json!({"steps": [{"name": "A", "approver": []}]}),
                "Field 'steps[0].approver' must be a JSON object.",
            ),
            (
                json!({"steps": [{"name": "A", "approver": {}, "x": 1}]}),
                "Field 'steps[0].x' is not a known field (expected: name, approver, quorum, when, due_in, on_overdue, escalate_to).",
            ),
        ];
        for (body, message) in cases {
            assert_eq!(update(body.clone()), Err(message.to_owned()), "{body}");
        }
    }
}
