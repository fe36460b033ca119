//! The `RoleResolver` port on PostgreSQL: users, roles and memberships as they are now.

use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use super::PgStore;
use super::rows::user_id as stored_user_id;
use super::schema::{user_roles, users};
use crate::domain::WorkflowError;
use crate::domain::model::{Approver, UserId};
use crate::domain::ports::RoleResolver;

impl RoleResolver for PgStore {
    async fn user_exists(&self, user: UserId) -> Result<bool, WorkflowError> {
        self.with_conn(async |conn| {
            Ok(
                diesel::select(diesel::dsl::exists(users::table.find(user.get())))
                    .get_result(conn)
                    .await?,
            )
        })
        .await
    }

    async fn eligible_users(
        &self,
        approvers: &[Approver],
    ) -> Result<Vec<Vec<UserId>>, WorkflowError> {
        let wanted_roles: Vec<&str> = approvers
            .iter()
            .filter_map(|a| match a {
                Approver::Role { role } => Some(role.as_str()),
                Approver::User { .. } => None,
            })
            .collect();
        let wanted_users: Vec<i64> = approvers
            .iter()
            .filter_map(|a| match a {
                Approver::User { user_id } => Some(user_id.get()),
                Approver::Role { .. } => None,
            })
            .collect();
        self.with_conn(async |conn| {
            // The two reads are independent: pipelined, one round trip.
            let shared: &AsyncPgConnection = conn;
            let memberships = async {
                if wanted_roles.is_empty() {
                    return Ok(Vec::new());
                }
                user_roles::table
                    .filter(user_roles::role.eq_any(&wanted_roles))
                    .order((user_roles::role, user_roles::user_id))
                    .select((user_roles::role, user_roles::user_id))
                    .load::<(String, i64)>(&mut &*shared)
                    .await
            };
            let known_users = async {
                if wanted_users.is_empty() {
                    return Ok(Vec::new());
                }
                users::table
                    .filter(users::id.eq_any(&wanted_users))
                    .select(users::id)
                    .load::<i64>(&mut &*shared)
                    .await
            };
            let (memberships, known_users) =
                futures_util::future::try_join(memberships, known_users).await?;
            approvers
                .iter()
                .map(|a| match a {
                    Approver::User { user_id } => Ok(if known_users.contains(&user_id.get()) {
                        vec![*user_id]
                    } else {
                        Vec::new()
                    }),
                    Approver::Role { role } => memberships
                        .iter()
                        .filter(|(r, _)| r == role.as_str())
                        .map(|(_, u)| stored_user_id(*u))
                        .collect(),
                })
                .collect::<Result<_, WorkflowError>>()
                .map_err(Into::into)
        })
        .await
    }
}
