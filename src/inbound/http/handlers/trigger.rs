//! Driving adapter, HTTP: `POST /api/v1/workflow/instances`, starting a workflow.

use std::sync::Arc;

use serde::Deserialize;
use serde_json::Value;
use utoipa::ToSchema;
use warp::http::{Method, StatusCode};
use warp::reply::Response;

use super::finish;
use crate::domain::model::{Instance, TriggerRequest};
use crate::domain::ports::WorkflowUseCases;
use crate::inbound::http::body::JsonObject;
use crate::inbound::http::errors::ApiError;
use crate::inbound::http::idempotency::{KeyHeader, once, render, respond};
use crate::inbound::http::requests::{Refusal, parse};
use crate::inbound::http::responses::InstanceDto;
use crate::inbound::http::schemas::{EntityIdField, EntityTypeField, EventNameField, UserIdField};

/// Most top-level keys a context object may have (the body limit bounds its size anyway).
pub(crate) const MAX_CONTEXT_KEYS: usize = 256;

/// The trigger body.
#[derive(Debug, Deserialize, ToSchema)]
#[schema(as = TriggerRequest)]
#[serde(deny_unknown_fields)]
pub struct TriggerBody {
    event: EventNameField,
    entity_type: EntityTypeField,
    entity_id: EntityIdField,
    initiated_by: UserIdField,
    /// Free-form, stored and returned unchanged.
    #[schema(value_type = Option<crate::inbound::http::schemas::ContextSchema>)]
    context: Option<Context>,
}

impl TriggerBody {
    /// The domain request (every field was checked while parsing).
    pub fn try_into_domain(self) -> Result<TriggerRequest, ApiError> {
        Ok(TriggerRequest {
            event: self.event.0,
            entity_type: self.entity_type.0,
            entity_id: self.entity_id.0,
            initiated_by: self.initiated_by.0,
            context: self.context.map(|c| Value::Object(c.0)),
        })
    }
}

/// Free-form context: a JSON object of bounded width, without NUL anywhere (PostgreSQL can't
/// store NUL in jsonb; refused here for every store alike).
#[derive(Debug, Deserialize)]
#[serde(try_from = "Value")]
struct Context(JsonObject);

impl TryFrom<Value> for Context {
    type Error = Refusal;

    fn try_from(value: Value) -> Result<Self, Refusal> {
        let Value::Object(map) = value else {
            return Err(Refusal::new("must be a JSON object"));
        };
        if map.len() > MAX_CONTEXT_KEYS {
            return Err(Refusal::new(format!(
                "must have at most {MAX_CONTEXT_KEYS} keys"
            )));
        }
        if map.iter().any(|(k, v)| k.contains('\0') || has_nul(v)) {
            return Err(Refusal::new("must not contain NUL characters"));
        }
        Ok(Self(map))
    }
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

/// `POST /api/v1/workflow/instances`
#[utoipa::path(
    post,
    path = "/api/v1/workflow/instances",
    tag = "instances",
    operation_id = "trigger",
    summary = "Trigger an event: start an instance of the event's active template",
    params(
        ("Idempotency-Key" = Option<crate::inbound::http::schemas::IdempotencyKeySchema>, Header, description = "Makes a retry of this request safe: the same key with the same request gets the first answer again (with `Idempotent-Replayed: true`); with another request, 422 `idempotency_key_reused`."),
    ),
    request_body(content = TriggerBody, content_type = "application/json"),
    responses(
        (status = 201, description = "The new instance, its first step awaiting action.", body = crate::inbound::http::responses::InstanceDto),
        (status = 403, description = "`user_inactive`: the initiator is inactive.", body = crate::inbound::http::errors::ErrorBody),
        (status = 409, description = "`instance_already_active`: an active instance exists for this event and entity.", body = crate::inbound::http::errors::ErrorBody),
        (status = 422, description = "`validation_failed`, `no_active_template`, `unknown_user`, `no_eligible_approver` or `idempotency_key_reused`.", body = crate::inbound::http::errors::ErrorBody),
    )
)]
#[tracing::instrument(
    name = "request",
    skip_all,
    fields(method = "POST", route = "/api/v1/workflow/instances", status = tracing::field::Empty)
)]
pub async fn trigger<S: WorkflowUseCases>(
    service: Arc<S>,
    key: KeyHeader,
    body: JsonObject,
) -> Response {
    let result: Result<_, ApiError> = async {
        let answer = render(StatusCode::CREATED, |i: &Instance| InstanceDto::from(i));
        let once = once(
            &key,
            &Method::POST,
            "/api/v1/workflow/instances",
            &body,
            answer,
        )?;
        let request = parse::<TriggerBody>(body, "")?.try_into_domain()?;
        let done = service.trigger(request, once).await?;
        Ok(respond(done, answer))
    }
    .await;
    finish(result)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn request(body: Value) -> Result<TriggerRequest, String> {
        let Value::Object(map) = body else {
            panic!("not an object")
        };
        parse::<TriggerBody>(map, "")
            .and_then(TriggerBody::try_into_domain)
            .map_err(|e| e.message)
    }

    fn valid() -> Value {
        json!({"event": "booking.cancellation_requested", "entity_type": "booking",
               "entity_id": 7, "initiated_by": 3})
    }

    #[test]
    fn a_valid_body_is_the_domain_request() {
        let mut body = valid();
        body["context"] = json!({"reason": "moving"});
        let request = request(body).unwrap();
        assert_eq!(request.event.as_str(), "booking.cancellation_requested");
        assert_eq!(request.entity_type.as_str(), "booking");
        assert_eq!(request.entity_id.get(), 7);
        assert_eq!(request.initiated_by.get(), 3);
        assert_eq!(request.context, Some(json!({"reason": "moving"})));
        let mut body = valid();
        body["context"] = Value::Null;
        assert_eq!(self::request(body).unwrap().context, None);
    }

    #[test]
    fn each_fault_has_the_contracts_message() {
        let name_rule =
            "must be 1 to 128 characters of a-z, 0-9, '_', '.' or '-', starting with a letter";
        let cases = [
            (
                "event",
                Value::Null,
                "Field 'event' is required.".to_owned(),
            ),
            (
                "event",
                json!(5),
                "Field 'event' must be a string.".to_owned(),
            ),
            (
                "event",
                json!("Bad!"),
                format!("Field 'event' {name_rule}."),
            ),
            (
                "entity_id",
                json!("7"),
                "Field 'entity_id' must be a positive integer.".to_owned(),
            ),
            (
                "initiated_by",
                json!(0),
                "Field 'initiated_by' must be a positive integer.".to_owned(),
            ),
            (
                "context",
                json!([1]),
                "Field 'context' must be a JSON object.".to_owned(),
            ),
            (
                "context",
                json!({"a": ["x\u{0}"]}),
                "Field 'context' must not contain NUL characters.".to_owned(),
            ),
            (
                "priority",
                json!("high"),
                "Field 'priority' is not a known field (expected: event, entity_type, \
                 entity_id, initiated_by, context)."
                    .to_owned(),
            ),
        ];
        for (field, value, message) in cases {
            let mut body = valid();
            body[field] = value;
            assert_eq!(request(body), Err(message), "{field}");
        }
    }

    #[test]
    fn context_width_is_bounded() {
        let wide: JsonObject = (0..=MAX_CONTEXT_KEYS)
            .map(|i| (format!("k{i}"), json!(i)))
            .collect();
        let mut body = valid();
        body["context"] = Value::Object(wide);
        assert_eq!(
            request(body),
            Err("Field 'context' must have at most 256 keys.".to_owned())
        );
    }

    #[test]
    fn faults_are_reported_in_field_order() {
        // The event's name rule is checked before the entity id's type.
        let mut body = valid();
        body["event"] = json!("Bad!");
        body["entity_id"] = json!("7");
        assert!(request(body).unwrap_err().starts_with("Field 'event' "));
        let mut body = valid();
        body.as_object_mut().unwrap().remove("entity_type");
        body["context"] = json!(1);
        assert_eq!(
            request(body),
            Err("Field 'entity_type' is required.".to_owned())
        );
    }
}
