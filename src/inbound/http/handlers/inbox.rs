//! Driving adapter, HTTP: `GET /api/v1/workflow/steps/pending?user_id=N&limit=M&after=C`, a
//! user's inbox, a page at a time. The cursor is [`cursor`]'s; its position is the last step's
//! activation time (in nanoseconds, exact for either store) and id.

use std::sync::Arc;

use warp::http::StatusCode;
use warp::reply::Response;

use super::finish;
use chrono::DateTime;

use crate::domain::model::{InboxCursor, InboxPage, StepId, UserId};
use crate::domain::ports::WorkflowUseCases;
use crate::domain::service::MAX_PENDING_LIMIT;
use crate::inbound::http::cursor;
use crate::inbound::http::errors::ApiError;
use crate::inbound::http::responses::{InboxDto, PendingStepDto, json};

/// Default inbox page size.
const DEFAULT_PENDING_LIMIT: u32 = 50;

/// The inbox query, typed.
#[derive(Debug, PartialEq, Eq)]
pub struct PendingQuery {
    pub user_id: UserId,
    pub limit: u32,
    pub after: Option<InboxCursor>,
}

/// Parsed by hand from the query's pairs rather than derived: `warp::query` drops serde's error
/// (every fault would be the same "not a well-formed query string"), and a derive would name no
/// field the contract's way, refuse a repeated parameter (the last one has always won), and
/// report faults in field order rather than in the order the client wrote them.
impl TryFrom<Vec<(String, String)>> for PendingQuery {
    type Error = ApiError;

    fn try_from(pairs: Vec<(String, String)>) -> Result<Self, ApiError> {
        let mut user_id = None;
        let mut limit = DEFAULT_PENDING_LIMIT;
        let mut after = None;
        for (key, value) in pairs {
            match key.as_str() {
                "user_id" => {
                    let id = value.parse::<i64>().ok().and_then(|n| UserId::new(n).ok());
                    user_id = Some(id.ok_or_else(|| {
                        ApiError::validation("user_id", "must be a positive integer")
                    })?);
                }
                "limit" => {
                    // The range is the service's rule; only the syntax is checked here.
                    limit = value.parse::<u32>().map_err(|_| {
                        ApiError::validation(
                            "limit",
                            &format!("must be an integer between 1 and {MAX_PENDING_LIMIT}"),
                        )
                    })?;
                }
                "after" => after = Some(decode_cursor(&value)?),
                other => {
                    return Err(ApiError::validation(
                        other,
                        "is not a known query parameter (expected: user_id, limit, after)",
                    ));
                }
            }
        }
        let user_id = user_id.ok_or_else(|| ApiError::validation("user_id", "is required"))?;
        Ok(Self {
            user_id,
            limit,
            after,
        })
    }
}

/// The cursor for the page after the one ending at `last`.
pub fn encode_cursor(last: InboxCursor) -> String {
    // Every time either store keeps fits: nanoseconds in an i64 reach the year 2262.
    let nanos = last.activated_at.timestamp_nanos_opt().unwrap_or(i64::MAX);
    cursor::encode(&[nanos, last.step_id.get()])
}

/// The position inside a cursor this API handed out; anything else is 422 naming `after`.
pub fn decode_cursor(token: &str) -> Result<InboxCursor, ApiError> {
    let [nanos, step] = cursor::decode::<2>(token, "after")?;
    let step_id = StepId::new(step).map_err(|_| cursor::refused("after"))?;
    Ok(InboxCursor {
        activated_at: DateTime::from_timestamp_nanos(nanos),
        step_id,
    })
}

/// `GET /api/v1/workflow/steps/pending`
#[utoipa::path(
    get,
    path = "/api/v1/workflow/steps/pending",
    tag = "steps",
    operation_id = "pending_steps",
    summary = "A user's inbox: the steps awaiting its decision, oldest activation first",
    params(
        ("user_id" = crate::inbound::http::schemas::PathId, Query, description = "The user whose inbox it is."),
        ("limit" = Option<crate::inbound::http::schemas::SearchLimit>, Query, description = "Most entries, 1 to 500 (default 50)."),
        ("after" = Option<String>, Query, description = "The `next` cursor of the previous page, unchanged."),
    ),
    responses(
        (status = 200, description = "The inbox (empty for an unknown user).", body = crate::inbound::http::responses::InboxDto),
        (status = 422, description = "`validation_failed`: a missing, malformed or unknown parameter.", body = crate::inbound::http::errors::ErrorBody),
    )
)]
#[tracing::instrument(
    name = "request",
    skip_all,
    fields(method = "GET", route = "/api/v1/workflow/steps/pending", status = tracing::field::Empty)
)]
pub async fn pending_steps<S: WorkflowUseCases>(
    service: Arc<S>,
    query: Vec<(String, String)>,
) -> Response {
    let result: Result<_, ApiError> = async {
        let query = PendingQuery::try_from(query)?;
        let page: InboxPage = service
            .pending_steps(query.user_id, query.limit, query.after)
            .await?;
        let dto = InboxDto {
            items: page.items.iter().map(PendingStepDto::from).collect(),
            next: page.next.map(encode_cursor),
        };
        Ok(json(StatusCode::OK, &dto))
    }
    .await;
    finish(result)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(text: &str) -> Result<PendingQuery, String> {
        let pairs: Vec<(String, String)> = text
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|p| {
                let (k, v) = p.split_once('=').unwrap_or((p, ""));
                (k.to_owned(), v.to_owned())
            })
            .collect();
        PendingQuery::try_from(pairs).map_err(|e| e.message)
    }

    fn typed(user: i64, limit: u32) -> Result<PendingQuery, String> {
        Ok(PendingQuery {
            user_id: UserId::new(user).unwrap(),
            limit,
            after: None,
        })
    }

    fn position(nanos: i64, step: i64) -> InboxCursor {
        InboxCursor {
            activated_at: DateTime::from_timestamp_nanos(nanos),
            step_id: StepId::new(step).unwrap(),
        }
    }

    #[test]
    fn the_query_is_typed_with_a_default_limit() {
        assert_eq!(query("user_id=3"), typed(3, 50));
        assert_eq!(query("limit=7&user_id=3"), typed(3, 7));
        // The range is the service's to check.
        assert_eq!(query("user_id=3&limit=0"), typed(3, 0));
        // A repeated parameter: the last one wins.
        assert_eq!(query("user_id=3&user_id=4"), typed(4, 50));
    }

    #[test]
    fn each_fault_has_the_contracts_message() {
        let cases = [
            ("", "Field 'user_id' is required."),
            ("limit=5", "Field 'user_id' is required."),
            ("user_id=", "Field 'user_id' must be a positive integer."),
            ("user_id=0", "Field 'user_id' must be a positive integer."),
            (
                "user_id=1&limit=-1",
                "Field 'limit' must be an integer between 1 and 500.",
            ),
            (
                "user_id=1&limit=ten",
                "Field 'limit' must be an integer between 1 and 500.",
            ),
            (
                "user_id=1&page=2",
                "Field 'page' is not a known query parameter (expected: user_id, limit, after).",
            ),
            // Faults are reported in the order the client wrote them.
            (
                "page=2&user_id=x",
                "Field 'page' is not a known query parameter (expected: user_id, limit, after).",
            ),
            (
                "user_id=x&user_id=1",
                "Field 'user_id' must be a positive integer.",
            ),
        ];
        for (text, message) in cases {
            assert_eq!(query(text), Err(message.to_owned()), "{text:?}");
        }
    }

    #[test]
    fn a_cursor_round_trips_to_the_nanosecond() {
        for (nanos, step) in [
            (1_795_720_209_775_908_522, 1),
            (0, 7),
            (-1, i64::MAX),
            (i64::MAX, 3),
        ] {
            let token = encode_cursor(position(nanos, step));
            assert_eq!(decode_cursor(&token), Ok(position(nanos, step)));
            let pairs = vec![
                ("user_id".to_owned(), "3".to_owned()),
                ("after".to_owned(), token),
            ];
            assert_eq!(
                PendingQuery::try_from(pairs).map(|q| q.after),
                Ok(Some(position(nanos, step)))
            );
        }
    }

    #[test]
    fn a_cursor_of_another_kind_or_no_step_is_refused_naming_after() {
        let refused = [
            "x".to_owned(),
            // A search's cursor has one field, not two.
            cursor::encode(&[120]),
            cursor::encode(&[1, 2, 3]),
            cursor::encode(&[1_000, 0]),
            cursor::encode(&[1_000, -4]),
        ];
        for token in refused {
            let error = decode_cursor(&token).unwrap_err();
            assert_eq!(error.status, StatusCode::UNPROCESSABLE_ENTITY, "{token:?}");
            assert_eq!(
                error.message,
                "Field 'after' is not a cursor this API returned; pass the 'next' of the \
                 previous page unchanged.",
                "{token:?}"
            );
        }
    }
}
