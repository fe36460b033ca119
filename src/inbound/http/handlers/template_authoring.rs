//! Driving adapter, HTTP: `POST /api/v1/workflow/templates`, creating a template, and
//! `GET /api/v1/workflow/templates?event=&is_active=`, listing templates.

use std::sync::Arc;

use serde::Deserialize;
use utoipa::ToSchema;
use warp::http::{Method, StatusCode};
use warp::reply::Response;

use super::finish;
use super::templates::parse_steps;
use crate::domain::model::{EventName, NewTemplate, Template, TemplateFilter};
use crate::domain::ports::WorkflowUseCases;
use crate::inbound::http::body::JsonObject;
use crate::inbound::http::errors::ApiError;
use crate::inbound::http::idempotency::{KeyHeader, once, render, respond};
use crate::inbound::http::requests::{Array, Flag, Text, parse};
use crate::inbound::http::responses::{TemplateDto, TemplateListDto, json};
use crate::inbound::http::schemas::{EntityTypeField, EventNameField};

/// The creation body: `name`, `event`, `entity_type` and `steps` (numbered by position), with
/// `is_active` (default true) and `forbid_self_approval` (default false). Lengths and step
/// counts are the domain's rules, checked once there.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = NewTemplateRequest)]
pub struct NewTemplateBody {
    #[schema(value_type = crate::inbound::http::schemas::Label)]
    name: Text,
    event: EventNameField,
    entity_type: EntityTypeField,
    /// The steps in order (numbered by position).
    #[schema(value_type = crate::inbound::http::schemas::StepList)]
    steps: Array,
    /// Default true.
    is_active: Option<Flag>,
    forbid_self_approval: Option<Flag>,
}

impl NewTemplateBody {
    /// The domain's new template, with each step parsed in turn (`steps[i].…` in errors).
    pub fn try_into_domain(self) -> Result<NewTemplate, ApiError> {
        Ok(NewTemplate {
            name: self.name.0,
            event: self.event.0,
            entity_type: self.entity_type.0,
            is_active: self.is_active.is_none_or(|f| f.0),
            forbid_self_approval: self.forbid_self_approval.is_some_and(|f| f.0),
            steps: parse_steps(self.steps)?,
        })
    }
}

/// The list's query, typed: the filter it asks for.
#[derive(Debug, PartialEq, Eq)]
pub struct TemplateFilterQuery(pub TemplateFilter);

/// Parsed by hand from the pairs, as the inbox's query is (see `inbox::PendingQuery`): each
/// fault names its parameter, in the order the client wrote them, and a repeated parameter's
/// last value wins.
impl TryFrom<Vec<(String, String)>> for TemplateFilterQuery {
    type Error = ApiError;

    fn try_from(pairs: Vec<(String, String)>) -> Result<Self, ApiError> {
        let mut filter = TemplateFilter::default();
        for (key, value) in pairs {
            match key.as_str() {
                // The domain's refusal names the field `event`, as the parameter is named.
                "event" => filter.event = Some(EventName::new(value).map_err(ApiError::from)?),
                "is_active" => {
                    filter.is_active = Some(match value.as_str() {
                        "true" => true,
                        "false" => false,
                        _ => {
                            return Err(ApiError::validation("is_active", "must be true or false"));
                        }
                    });
                }
                other => {
                    return Err(ApiError::validation(
                        other,
                        "is not a known query parameter (expected: event, is_active)",
                    ));
                }
            }
        }
        Ok(Self(filter))
    }
}

/// `POST /api/v1/workflow/templates`
#[utoipa::path(
    post,
    path = "/api/v1/workflow/templates",
    tag = "templates",
    operation_id = "create_template",
    summary = "Create a template (version 1)",
    params(
        ("Idempotency-Key" = Option<crate::inbound::http::schemas::IdempotencyKeySchema>, Header, description = "Makes a retry of this request safe: the same key with the same request gets the first answer again (with `Idempotent-Replayed: true`); with another request, 422 `idempotency_key_reused`."),
    ),
    request_body(content = NewTemplateBody, content_type = "application/json"),
    responses(
        (status = 201, description = "The new template.", body = crate::inbound::http::responses::TemplateDto),
        (status = 409, description = "`template_conflict`: another template is active for the event.", body = crate::inbound::http::errors::ErrorBody),
        (status = 422, description = "`validation_failed` or `idempotency_key_reused`.", body = crate::inbound::http::errors::ErrorBody),
    )
)]
#[tracing::instrument(
    name = "request",
    skip_all,
    fields(method = "POST", route = "/api/v1/workflow/templates", status = tracing::field::Empty)
)]
pub async fn create_template<S: WorkflowUseCases>(
    service: Arc<S>,
    key: KeyHeader,
    body: JsonObject,
) -> Response {
    let result: Result<_, ApiError> = async {
        let answer = render(StatusCode::CREATED, |t: &Template| TemplateDto::from(t));
        let once = once(
            &key,
            &Method::POST,
            "/api/v1/workflow/templates",
            &body,
            answer,
        )?;
        let new = parse::<NewTemplateBody>(body, "")?.try_into_domain()?;
        let done = service.create_template(new, once).await?;
        Ok(respond(done, answer))
    }
    .await;
    finish(result)
}

/// `GET /api/v1/workflow/templates`
#[utoipa::path(
    get,
    path = "/api/v1/workflow/templates",
    tag = "templates",
    operation_id = "list_templates",
    summary = "List templates by id",
    params(
        ("event" = Option<crate::inbound::http::schemas::EventNameField>, Query, description = "Templates of this event."),
        ("is_active" = Option<bool>, Query, description = "Only active (or only inactive) templates."),
    ),
    responses(
        (status = 200, description = "The templates, by id, each with its steps.", body = crate::inbound::http::responses::TemplateListDto),
        (status = 422, description = "`validation_failed`: a malformed or unknown parameter.", body = crate::inbound::http::errors::ErrorBody),
    )
)]
#[tracing::instrument(
    name = "request",
    skip_all,
    fields(method = "GET", route = "/api/v1/workflow/templates", status = tracing::field::Empty)
)]
pub async fn templates<S: WorkflowUseCases>(
    service: Arc<S>,
    query: Vec<(String, String)>,
) -> Response {
    let result: Result<_, ApiError> = async {
        let TemplateFilterQuery(filter) = TemplateFilterQuery::try_from(query)?;
        let templates = service.templates(filter).await?;
        let items = templates.iter().map(TemplateDto::from).collect();
        Ok(json(StatusCode::OK, &TemplateListDto { items }))
    }
    .await;
    finish(result)
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;
    use crate::domain::model::{Approver, EntityType, RoleName, TemplateStep, UserId};

    fn new_template(body: Value) -> Result<NewTemplate, String> {
        let Value::Object(map) = body else {
            panic!("not an object")
        };
        parse::<NewTemplateBody>(map, "")
            .and_then(NewTemplateBody::try_into_domain)
            .map_err(|e| e.message)
    }

    fn minimal() -> Value {
        json!({
            "name": "Refund",
            "event": "booking.refund_requested",
            "entity_type": "booking",
            "steps": [
                {"name": "Finance", "approver": {"type": "role", "role": "finance_manager"}},
                {"name": "Sales", "approver": {"type": "user", "user_id": 1}}
            ]
        })
    }

    #[test]
    fn a_minimal_body_is_active_and_allows_self_approval() {
        let new = new_template(minimal()).unwrap();
        assert_eq!(
            new,
            NewTemplate {
                name: "Refund".to_owned(),
                event: EventName::new("booking.refund_requested").unwrap(),
                entity_type: EntityType::new("booking").unwrap(),
                is_active: true,
                forbid_self_approval: false,
                steps: vec![
                    TemplateStep {
                        step_order: 1,
                        name: "Finance".to_owned(),
                        approver: Approver::Role {
                            role: RoleName::new("finance_manager").unwrap()
                        },
                        quorum: Default::default(),
                        when: None,
                        due: None,
                    },
                    TemplateStep {
                        step_order: 2,
                        name: "Sales".to_owned(),
                        approver: Approver::User {
                            user_id: UserId::new(1).unwrap()
                        },
                        quorum: Default::default(),
                        when: None,
                        due: None,
                    },
                ],
            }
        );
    }

    #[test]
    fn the_flags_are_taken_as_given() {
        let mut body = minimal();
        body["is_active"] = json!(false);
        body["forbid_self_approval"] = json!(true);
        let new = new_template(body).unwrap();
        assert!(!new.is_active);
        assert!(new.forbid_self_approval);
    }

    #[test]
    fn each_fault_has_the_contracts_message() {
        let with = |key: &str, value: Value| {
            let mut body = minimal();
            body[key] = value;
            body
        };
        let without = |key: &str| {
            let mut body = minimal();
            body.as_object_mut().unwrap().remove(key);
            body
        };
        let cases = [
            (without("name"), "Field 'name' is required."),
            (without("event"), "Field 'event' is required."),
            (without("entity_type"), "Field 'entity_type' is required."),
            (without("steps"), "Field 'steps' is required."),
            (with("name", json!(5)), "Field 'name' must be a string."),
            (
                with("event", json!("Booking")),
                "Field 'event' must be 1 to 128 characters of a-z, 0-9, '_', '.' or '-', \
                 starting with a letter.",
            ),
            (
                with("steps", json!({})),
                "Field 'steps' must be a JSON array.",
            ),
            (
                with("steps", json!([{"name": "A"}])),
                "Field 'steps[0].approver' is required.",
            ),
            (
                with("is_active", json!("yes")),
                "Field 'is_active' must be true or false.",
            ),
            (
                with("forbid_self_approval", json!(1)),
                "Field 'forbid_self_approval' must be true or false.",
            ),
            (
                with("version", json!(1)),
                "Field 'version' is not a known field (expected: name, event, entity_type, \
                 steps, is_active, forbid_self_approval).",
            ),
        ];
        for (body, message) in cases {
            assert_eq!(
                new_template(body.clone()),
                Err(message.to_owned()),
                "{body}"
            );
        }
    }

    fn query(pairs: &[(&str, &str)]) -> Result<TemplateFilter, String> {
        let pairs = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect::<Vec<_>>();
        TemplateFilterQuery::try_from(pairs)
            .map(|q| q.0)
            .map_err(|e| e.message)
    }

    #[test]
    fn the_query_is_typed() {
        assert_eq!(query(&[]), Ok(TemplateFilter::default()));
        assert_eq!(
            query(&[
                ("is_active", "false"),
                ("event", "unit.price_update_requested")
            ]),
            Ok(TemplateFilter {
                event: Some(EventName::new("unit.price_update_requested").unwrap()),
                is_active: Some(false),
            })
        );
        // A repeated parameter: the last one wins.
        assert_eq!(
            query(&[("is_active", "false"), ("is_active", "true")]),
            Ok(TemplateFilter {
                event: None,
                is_active: Some(true),
            })
        );
    }

    #[test]
    fn each_query_fault_names_its_parameter() {
        let cases: [(&[(&str, &str)], &str); 4] = [
            (
                &[("is_active", "yes")],
                "Field 'is_active' must be true or false.",
            ),
            (
                &[("event", "")],
                "Field 'event' must be 1 to 128 characters of a-z, 0-9, '_', '.' or '-', \
                 starting with a letter.",
            ),
            (
                &[("page", "2")],
                "Field 'page' is not a known query parameter (expected: event, is_active).",
            ),
            // Faults are reported in the order the client wrote them.
            (
                &[("page", "2"), ("is_active", "x")],
                "Field 'page' is not a known query parameter (expected: event, is_active).",
            ),
        ];
        for (pairs, message) in cases {
            assert_eq!(query(pairs), Err(message.to_owned()), "{pairs:?}");
        }
    }
}
