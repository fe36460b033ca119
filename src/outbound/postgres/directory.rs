//! Outbound adapter, PostgreSQL: the `RoleResolver` port, the user directory (users, roles and
//! who holds which) as it is now. Instances keep their own snapshots of it.

use diesel::prelude::*;
use diesel::result::Error as DieselError;
use diesel::sql_types::Bool;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};

use super::errors::TxError;
use super::rows::user_id as stored_user_id;
use super::schema::{roles, user_roles, users};
use super::{Conn, PgStore};
use crate::domain::WorkflowError;
use crate::domain::model::{Approver, RoleName, User, UserId};
use crate::domain::ports::RoleResolver;

impl RoleResolver for PgStore {
    async fn put_user(&self, user: User) -> Result<bool, WorkflowError> {
        self.with_conn(async |conn| {
            conn.transaction::<_, TxError, _>(async |conn| {
                let created = upsert_user(conn, user.id, &user.name).await?;
                replace_roles(conn, user.id, &user.roles).await?;
                Ok(created)
            })
            .await
        })
        .await
    }

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

/// Creates the user or renames it; returns whether it was created.
async fn upsert_user(conn: &mut Conn, id: UserId, name: &str) -> Result<bool, DieselError> {
    diesel::insert_into(users::table)
        .values((users::id.eq(id.get()), users::name.eq(name)))
        .on_conflict(users::id)
        .do_update()
        .set(users::name.eq(name))
        // A row the statement inserted has no deleting (or updating) transaction yet; one it
        // updated has this one's.
        .returning(diesel::dsl::sql::<Bool>("xmax = 0"))
        .get_result(conn)
        .await
}

/// Makes `held` the roles `user` holds, creating the roles it names that don't exist yet.
async fn replace_roles(
    conn: &mut Conn,
    user: UserId,
    held: &[RoleName],
) -> Result<(), DieselError> {
    diesel::delete(user_roles::table.filter(user_roles::user_id.eq(user.get())))
        .execute(conn)
        .await?;
    if held.is_empty() {
        return Ok(());
    }
    let names: Vec<_> = held.iter().map(|r| roles::name.eq(r.as_str())).collect();
    diesel::insert_into(roles::table)
        .values(&names)
        .on_conflict_do_nothing()
        .execute(conn)
        .await?;
    let memberships: Vec<_> = held
        .iter()
        .map(|r| {
            (
                user_roles::role.eq(r.as_str()),
                user_roles::user_id.eq(user.get()),
            )
        })
        .collect();
    // A role listed twice is held once.
    diesel::insert_into(user_roles::table)
        .values(&memberships)
        .on_conflict_do_nothing()
        .execute(conn)
        .await?;
    Ok(())
}

#[cfg(any(test, feature = "test-support"))]
impl PgStore {
    /// Adds a user (or renames one), leaving its roles as they are.
    pub async fn add_user(&self, id: UserId, name: &str) -> Result<(), WorkflowError> {
        self.with_conn(async |conn| {
            upsert_user(conn, id, name).await?;
            Ok(())
        })
        .await
    }

    /// Replaces the roles `user` holds (roles are created as needed).
    pub async fn set_user_roles(
        &self,
        user: UserId,
        held: &[RoleName],
    ) -> Result<(), WorkflowError> {
        self.with_conn(async |conn| {
            conn.transaction::<_, TxError, _>(async |conn| {
                Ok(replace_roles(conn, user, held).await?)
            })
            .await
        })
        .await
    }
}
