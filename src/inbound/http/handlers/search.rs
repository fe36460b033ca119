//! Driving adapter, HTTP: `GET /api/v1/workflow/instances?entity_type=..&entity_id=..&event=..
//! &status=..&initiated_by=..&limit=..&after=..`, finding instances newest first, a page at a
//! time.
//!
//! The cursor is [`cursor`]'s, its position the id below which the next page starts.

use std::sync::Arc;

use serde::Serialize;
use utoipa::ToSchema;
use warp::http::StatusCode;
use warp::reply::Response;

use super::finish;
use crate::domain::model::{
    EntityId, EntityType, EventName, INSTANCE_STATUSES, InstanceFilter, InstanceId, InstancePage,
    InstanceStatus, UserId,
};
use crate::domain::ports::WorkflowUseCases;
use crate::domain::service::MAX_SEARCH_LIMIT;
use crate::inbound::http::cursor;
use crate::inbound::http::errors::ApiError;
use crate::inbound::http::responses::{InstanceDto, json};

/// Default page size.
const DEFAULT_SEARCH_LIMIT: u32 = 50;

/// The query parameters, in the order the refusal of an unknown one lists them.
const PARAMETERS: &str = "entity_type, entity_id, event, status, initiated_by, limit, after";

/// The search query, typed.
#[derive(Debug, PartialEq, Eq)]
pub struct SearchQuery {
    pub filter: InstanceFilter,
    pub limit: u32,
    pub after: Option<InstanceId>,
}

/// Parsed by hand from the query's pairs, as the inbox's query is (see `inbox::PendingQuery`
/// for why): each fault names its parameter, a repeated parameter's last value wins, and faults
/// are reported in the order the client wrote them; the one rule across parameters (an entity
/// id needs its type) is the domain's, checked last.
impl TryFrom<Vec<(String, String)>> for SearchQuery {
    type Error = ApiError;

    fn try_from(pairs: Vec<(String, String)>) -> Result<Self, ApiError> {
        let mut entity_type = None;
        let mut entity_id = None;
        let mut event = None;
        let mut status = None;
        let mut initiated_by = None;
        let mut limit = DEFAULT_SEARCH_LIMIT;
        let mut after = None;
        for (key, value) in pairs {
            match key.as_str() {
                "entity_type" => entity_type = Some(EntityType::new(value)?),
                "entity_id" => entity_id = Some(positive("entity_id", &value, EntityId::new)?),
                "event" => event = Some(EventName::new(value)?),
                "status" => status = Some(instance_status(&value)?),
                "initiated_by" => {
                    initiated_by = Some(positive("initiated_by", &value, UserId::new)?);
                }
                "limit" => {
                    // The range is the service's rule; only the syntax is checked here.
                    limit = value.parse::<u32>().map_err(|_| {
                        ApiError::validation(
                            "limit",
                            &format!("must be an integer between 1 and {MAX_SEARCH_LIMIT}"),
                        )
                    })?;
                }
                "after" => after = Some(decode_cursor(&value)?),
                other => {
                    return Err(ApiError::validation(
                        other,
                        &format!("is not a known query parameter (expected: {PARAMETERS})"),
                    ));
                }
            }
        }
        let filter = InstanceFilter::new(entity_type, entity_id, event, status, initiated_by)?;
        Ok(Self {
            filter,
            limit,
            after,
        })
    }
}

/// A positive integer id, else 422 naming `field`.
fn positive<T>(
    field: &str,
    value: &str,
    make: fn(i64) -> Result<T, crate::domain::WorkflowError>,
) -> Result<T, ApiError> {
    value
        .parse::<i64>()
        .ok()
        .and_then(|n| make(n).ok())
        .ok_or_else(|| ApiError::validation(field, "must be a positive integer"))
}

fn instance_status(value: &str) -> Result<InstanceStatus, ApiError> {
    InstanceStatus::parse(value).ok_or_else(|| {
        let names: Vec<&str> = INSTANCE_STATUSES.iter().map(|s| s.as_str()).collect();
        ApiError::validation("status", &format!("must be one of {}", names.join(", ")))
    })
}

/// The cursor for the page after the one ending at `last`.
pub fn encode_cursor(last: InstanceId) -> String {
    cursor::encode(&[last.get()])
}

/// The id inside a cursor this API handed out; anything else is 422 naming `after`.
pub fn decode_cursor(token: &str) -> Result<InstanceId, ApiError> {
    let [id] = cursor::decode::<1>(token, "after")?;
    InstanceId::new(id).map_err(|_| cursor::refused("after"))
}

/// A page of instances: each without its audit, and the cursor of the next page.
#[derive(Serialize, ToSchema)]
#[schema(as = InstancePage)]
pub(crate) struct SearchPageDto {
    items: Vec<InstanceDto>,
    /// The cursor of the next page (pass it as `after`), `null` on the last page.
    next: Option<String>,
}

impl From<&InstancePage> for SearchPageDto {
    fn from(page: &InstancePage) -> Self {
        Self {
            items: page.items.iter().map(InstanceDto::without_audit).collect(),
            next: page.next.map(encode_cursor),
        }
    }
}

/// `GET /api/v1/workflow/instances`
#[utoipa::path(
    get,
    path = "/api/v1/workflow/instances",
    tag = "instances",
    operation_id = "search_instances",
    summary = "Find instances, newest first, a page at a time",
    params(
        ("entity_type" = Option<crate::inbound::http::schemas::EntityTypeField>, Query, description = "Instances about entities of this kind."),
        ("entity_id" = Option<crate::inbound::http::schemas::PathId>, Query, description = "Instances about this entity; needs `entity_type`."),
        ("event" = Option<crate::inbound::http::schemas::EventNameField>, Query, description = "Instances of this event."),
        ("status" = Option<crate::inbound::http::schemas::InstanceStatusSchema>, Query, description = "Instances in this status."),
        ("initiated_by" = Option<crate::inbound::http::schemas::PathId>, Query, description = "Instances this user started."),
        ("limit" = Option<crate::inbound::http::schemas::SearchLimit>, Query, description = "Page size, 1 to 500 (default 50)."),
        ("after" = Option<String>, Query, description = "The `next` cursor of the previous page, unchanged."),
    ),
    responses(
        (status = 200, description = "A page of instances (without their audit) and the cursor of the next page, `null` on the last.", body = SearchPageDto),
        (status = 422, description = "`validation_failed`: a malformed or unknown parameter, a limit out of range, `entity_id` without `entity_type`, or a cursor the API did not write.", body = crate::inbound::http::errors::ErrorBody),
    )
)]
#[tracing::instrument(
    name = "request",
    skip_all,
    fields(method = "GET", route = "/api/v1/workflow/instances", status = tracing::field::Empty)
)]
pub async fn search_instances<S: WorkflowUseCases>(
    service: Arc<S>,
    query: Vec<(String, String)>,
) -> Response {
    let result: Result<_, ApiError> = async {
        let query = SearchQuery::try_from(query)?;
        let page = service
            .search_instances(query.filter, query.limit, query.after)
            .await?;
        Ok(json(StatusCode::OK, &SearchPageDto::from(&page)))
    }
    .await;
    finish(result)
}

#[cfg(test)]
mod tests;
