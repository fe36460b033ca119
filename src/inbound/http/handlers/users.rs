//! Driving adapter, HTTP: the user directory. `PUT /api/v1/workflow/users/{id}` creates or
//! replaces a user, `GET /api/v1/workflow/users/{id}` reads one, and
//! `GET /api/v1/workflow/users?role=R` lists users (holding a role, or all of them), with the
//! body and query types and the wire format of a user (with its running delegation, on a read
//! of one user).

use std::collections::BTreeSet;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use warp::http::StatusCode;
use warp::reply::Response;

use super::delegation::DelegationDto;
use super::{finish, path_id};
use crate::domain::WorkflowError;
use crate::domain::model::{RoleName, User, UserId};
use crate::domain::ports::WorkflowUseCases;
use crate::inbound::http::body::JsonObject;
use crate::inbound::http::errors::ApiError;
use crate::inbound::http::requests::{Array, Flag, Name, Text, parse};
use crate::inbound::http::responses::json;

/// The body of `PUT /users/{id}`: the user's name, the roles it holds (machine names; one
/// listed twice is held once) and, optionally, whether it is active (default `true`). The id is
/// the path's. The name's length and the number of roles are the domain's rules, checked there.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = UserRequest)]
pub struct UserBody {
    #[schema(value_type = crate::inbound::http::schemas::Label)]
    name: Text,
    #[schema(value_type = crate::inbound::http::schemas::RoleList)]
    roles: Array,
    /// Default true.
    active: Option<Flag>,
}

impl UserBody {
    /// The domain user with this id; each role is checked in turn (`roles[i]` in errors).
    pub fn try_into_domain(self, id: UserId) -> Result<User, ApiError> {
        let roles = self
            .roles
            .0
            .into_iter()
            .enumerate()
            .map(|(index, item)| {
                Name::<RoleName>::try_from(item)
                    .map(|name| name.0)
                    .map_err(|r| r.for_field(&format!("roles[{index}]")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(User {
            id,
            name: self.name.0,
            roles,
            active: self.active.is_none_or(|f| f.0),
        })
    }
}

/// The query of `GET /users`: an optional role.
#[derive(Debug, PartialEq, Eq)]
pub struct UsersQuery {
    pub role: Option<RoleName>,
}

/// Parsed by hand from the query's pairs, as the inbox's is: faults in the order the client
/// wrote them, the field named, and a repeated parameter's last value winning.
impl TryFrom<Vec<(String, String)>> for UsersQuery {
    type Error = ApiError;

    fn try_from(pairs: Vec<(String, String)>) -> Result<Self, ApiError> {
        let mut role = None;
        for (key, value) in pairs {
            match key.as_str() {
                "role" => {
                    // The domain's own rule and message for a role name.
                    let name = RoleName::new(value).map_err(|e| match e {
                        WorkflowError::Validation { message, .. } => {
                            ApiError::validation("role", &message)
                        }
                        other => ApiError::validation("role", &other.to_string()),
                    })?;
                    role = Some(name);
                }
                other => {
                    return Err(ApiError::validation(
                        other,
                        "is not a known query parameter (expected: role)",
                    ));
                }
            }
        }
        Ok(Self { role })
    }
}

/// A user as the API sends it: `{"id","name","roles":[...sorted],"active"}`.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = User)]
pub struct UserDto {
    id: i64,
    name: String,
    roles: Vec<String>,
    active: bool,
    /// The user's running delegation (`GET /users/{id}` only; absent when none runs).
    #[serde(skip_serializing_if = "Option::is_none")]
    delegation: Option<DelegationDto>,
}

impl From<&User> for UserDto {
    fn from(user: &User) -> Self {
        // Sorted and each once, as the stores give them back, so that the answer to a PUT is
        // what a GET returns afterwards.
        let roles: BTreeSet<&str> = user.roles.iter().map(RoleName::as_str).collect();
        Self {
            id: user.id.get(),
            name: user.name.clone(),
            roles: roles.into_iter().map(str::to_owned).collect(),
            active: user.active,
            delegation: None,
        }
    }
}

/// The list of users.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = UserList)]
pub struct UsersDto {
    items: Vec<UserDto>,
}

/// `PUT /api/v1/workflow/users/{id}`: 201 when the user was created, 200 when it was replaced.
#[utoipa::path(
    put,
    path = "/api/v1/workflow/users/{id}",
    tag = "users",
    operation_id = "put_user",
    summary = "Create or replace a user",
    params(
        ("id" = crate::inbound::http::schemas::PathId, Path, description = "The user's id."),
    ),
    request_body(content = UserBody, content_type = "application/json"),
    responses(
        (status = 200, description = "The user, replaced.", body = UserDto),
        (status = 201, description = "The user, created.", body = UserDto),
        (status = 404, description = "`not_found`: the id is not a positive integer.", body = crate::inbound::http::errors::ErrorBody),
        (status = 422, description = "`validation_failed`.", body = crate::inbound::http::errors::ErrorBody),
    )
)]
#[tracing::instrument(
    name = "request",
    skip_all,
    fields(method = "PUT", route = "/api/v1/workflow/users/{id}", status = tracing::field::Empty)
)]
pub async fn put_user<S: WorkflowUseCases>(
    raw_id: String,
    service: Arc<S>,
    body: JsonObject,
) -> Response {
    let result: Result<_, ApiError> = async {
        let id = path_id(&raw_id, "user", UserId::new)?;
        let user = parse::<UserBody>(body, "")?.try_into_domain(id)?;
        let created = service.put_user(user.clone()).await?;
        let status = if created {
            StatusCode::CREATED
        } else {
            StatusCode::OK
        };
        Ok(json(status, &UserDto::from(&user)))
    }
    .await;
    finish(result)
}

/// `GET /api/v1/workflow/users/{id}`
#[utoipa::path(
    get,
    path = "/api/v1/workflow/users/{id}",
    tag = "users",
    operation_id = "get_user",
    summary = "Read a user",
    params(
        ("id" = crate::inbound::http::schemas::PathId, Path, description = "The user's id."),
    ),
    responses(
        (status = 200, description = "The user, with its running delegation if any.", body = UserDto),
        (status = 404, description = "`not_found`: no such user.", body = crate::inbound::http::errors::ErrorBody),
    )
)]
#[tracing::instrument(
    name = "request",
    skip_all,
    fields(method = "GET", route = "/api/v1/workflow/users/{id}", status = tracing::field::Empty)
)]
pub async fn user<S: WorkflowUseCases>(raw_id: String, service: Arc<S>) -> Response {
    let result: Result<_, ApiError> = async {
        let id = path_id(&raw_id, "user", UserId::new)?;
        let user = service.user(id).await?;
        let delegation = service.delegation(id).await?;
        let dto = UserDto {
            delegation: delegation.as_ref().map(DelegationDto::from),
            ..UserDto::from(&user)
        };
        Ok(json(StatusCode::OK, &dto))
    }
    .await;
    finish(result)
}

/// `GET /api/v1/workflow/users?role=R`
#[utoipa::path(
    get,
    path = "/api/v1/workflow/users",
    tag = "users",
    operation_id = "list_users",
    summary = "List users by id, all or those holding a role",
    params(
        ("role" = Option<crate::inbound::http::schemas::RoleNameField>, Query, description = "Users holding this role."),
    ),
    responses(
        (status = 200, description = "The users, by id.", body = UsersDto),
        (status = 422, description = "`validation_failed`: a malformed or unknown parameter.", body = crate::inbound::http::errors::ErrorBody),
    )
)]
#[tracing::instrument(
    name = "request",
    skip_all,
    fields(method = "GET", route = "/api/v1/workflow/users", status = tracing::field::Empty)
)]
pub async fn users<S: WorkflowUseCases>(service: Arc<S>, query: Vec<(String, String)>) -> Response {
    let result: Result<_, ApiError> = async {
        let query = UsersQuery::try_from(query)?;
        let users = service.users(query.role).await?;
        let items = users.iter().map(UserDto::from).collect();
        Ok(json(StatusCode::OK, &UsersDto { items }))
    }
    .await;
    finish(result)
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;

    fn body(value: Value) -> Result<User, String> {
        let Value::Object(map) = value else {
            panic!("not an object")
        };
        parse::<UserBody>(map, "")
            .and_then(|b| b.try_into_domain(UserId::new(7).unwrap()))
            .map_err(|e| e.message)
    }

    fn query(pairs: &[(&str, &str)]) -> Result<UsersQuery, String> {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        UsersQuery::try_from(pairs).map_err(|e: ApiError| e.message)
    }

    #[test]
    fn a_body_becomes_the_user_of_the_path_active_by_default() {
        let user = body(json!({"name": "Dana", "roles": ["finance_manager", "auditor"]})).unwrap();
        assert_eq!(user.id.get(), 7);
        assert_eq!(user.name, "Dana");
        assert_eq!(
            user.roles,
            vec![
                RoleName::new("finance_manager").unwrap(),
                RoleName::new("auditor").unwrap()
            ]
        );
        assert!(user.active);
        let inactive = body(json!({"name": "Dana", "roles": [], "active": false})).unwrap();
        assert!(!inactive.active);
        assert!(inactive.roles.is_empty());
    }

    #[test]
    fn each_fault_has_the_contracts_message() {
        let cases = [
            (json!({"roles": []}), "Field 'name' is required."),
            (
                json!({"name": null, "roles": []}),
                "Field 'name' is required.",
            ),
            (
                json!({"name": 5, "roles": []}),
                "Field 'name' must be a string.",
            ),
            (json!({"name": "Dana"}), "Field 'roles' is required."),
            (
                json!({"name": "Dana", "roles": "auditor"}),
                "Field 'roles' must be a JSON array.",
            ),
            (
                json!({"name": "Dana", "roles": ["auditor", 3]}),
                "Field 'roles[1]' must be a string.",
            ),
            (
                json!({"name": "Dana", "roles": ["Finance Manager"]}),
                "Field 'roles[0]' must be 1 to 64 characters of a-z, 0-9, '_', '.' or '-', \
                 starting with a letter.",
            ),
            (
                json!({"name": "Dana", "roles": [], "active": "yes"}),
                "Field 'active' must be true or false.",
            ),
            (
                json!({"name": "Dana", "roles": [], "id": 7}),
                "Field 'id' is not a known field (expected: name, roles, active).",
            ),
        ];
        for (value, message) in cases {
            assert_eq!(body(value.clone()), Err(message.to_owned()), "{value}");
        }
    }

    #[test]
    fn the_query_names_an_optional_role() {
        assert_eq!(query(&[]), Ok(UsersQuery { role: None }));
        assert_eq!(
            query(&[("role", "auditor"), ("role", "finance_manager")]),
            Ok(UsersQuery {
                role: Some(RoleName::new("finance_manager").unwrap())
            })
        );
        assert_eq!(
            query(&[("role", "Finance")]),
            Err(
                "Field 'role' must be 1 to 64 characters of a-z, 0-9, '_', '.' or '-', \
                 starting with a letter."
                    .to_owned()
            )
        );
        assert_eq!(
            query(&[("role", "")]).unwrap_err(),
            "Field 'role' must be 1 to 64 characters of a-z, 0-9, '_', '.' or '-', starting \
             with a letter."
        );
        assert_eq!(
            query(&[("page", "2"), ("role", "x")]),
            Err("Field 'page' is not a known query parameter (expected: role).".to_owned())
        );
    }

    #[test]
    fn a_user_is_sent_with_its_roles_sorted_once() {
        let user = User {
            id: UserId::new(4).unwrap(),
            name: "Robin".to_owned(),
            roles: ["sales_manager", "auditor", "sales_manager"]
                .into_iter()
                .map(|r| RoleName::new(r).unwrap())
                .collect(),
            active: false,
        };
        assert_eq!(
            serde_json::to_value(UserDto::from(&user)).unwrap(),
            json!({"id": 4, "name": "Robin", "roles": ["auditor", "sales_manager"], "active": false})
        );
    }
}
