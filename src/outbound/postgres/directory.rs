//! Outbound adapter, PostgreSQL: the `RoleResolver` port, the user directory (users, roles and
//! who holds which, and whether a user is active) as it is now. Instances keep their own
//! snapshots of it; inactive users are left out of new ones.

use diesel::prelude::*;
use diesel::result::Error as DieselError;
use diesel::sql_types::Bool;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};

use super::errors::TxError;
use super::rows::user_id as stored_user_id;
use super::schema::{roles, user_roles, users};
use super::{Conn, PgStore};
use crate::domain::WorkflowError;
use chrono::{DateTime, Utc};

use crate::domain::model::{Approver, Delegation, RoleName, User, UserId};
use crate::domain::ports::RoleResolver;

impl RoleResolver for PgStore {
    async fn put_user(&self, user: User) -> Result<bool, WorkflowError> {
        self.with_conn(async |conn| {
            conn.transaction::<_, TxError, _>(async |conn| {
                let created = upsert_user(conn, user.id, &user.name, user.active).await?;
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

    async fn user_active(&self, user: UserId) -> Result<Option<bool>, WorkflowError> {
        self.with_conn(async |conn| {
            Ok(users::table
                .find(user.get())
                .select(users::active)
                .first::<bool>(conn)
                .await
                .optional()?)
        })
        .await
    }

    async fn user(&self, id: UserId) -> Result<Option<User>, WorkflowError> {
        self.with_conn(async |conn| {
            // One statement, so the user and its roles come from one snapshot.
            let rows = users::table
                .left_join(user_roles::table)
                .filter(users::id.eq(id.get()))
                .order(user_roles::role)
                .select(UserRow::as_select())
                .load(conn)
                .await?;
            Ok(into_users(rows)?.into_iter().next())
        })
        .await
    }

    async fn users(&self, role: Option<RoleName>) -> Result<Vec<User>, WorkflowError> {
        self.with_conn(async |conn| {
            let mut query = users::table
                .left_join(user_roles::table)
                .order((users::id, user_roles::role))
                .select(UserRow::as_select())
                .into_boxed();
            if let Some(role) = &role {
                // The holders, as a subquery (aliased: the join reads the same table), so that
                // each listed user comes with all its roles, in one statement and one snapshot.
                let holder = diesel::alias!(user_roles as holder);
                query = query.filter(
                    users::id.eq_any(
                        holder
                            .filter(holder.field(user_roles::role).eq(role.as_str().to_owned()))
                            .select(holder.field(user_roles::user_id)),
                    ),
                );
            }
            Ok(into_users(query.load(conn).await?)?)
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
            // Inactive users are left out of both.
            let memberships = async {
                if wanted_roles.is_empty() {
                    return Ok(Vec::new());
                }
                user_roles::table
                    .inner_join(users::table)
                    .filter(user_roles::role.eq_any(&wanted_roles))
                    .filter(users::active)
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
                    .filter(users::active)
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

    async fn put_delegation(
        &self,
        delegation: Delegation,
        now: DateTime<Utc>,
    ) -> Result<(), WorkflowError> {
        self.store_delegation(delegation, now).await
    }

    async fn end_delegation(
        &self,
        user: UserId,
        now: DateTime<Utc>,
    ) -> Result<bool, WorkflowError> {
        self.remove_delegation(user, now).await
    }

    async fn delegation(
        &self,
        user: UserId,
        now: DateTime<Utc>,
    ) -> Result<Option<Delegation>, WorkflowError> {
        self.running_delegation(user, now).await
    }

    async fn delegators_of(
        &self,
        user: UserId,
        now: DateTime<Utc>,
    ) -> Result<Vec<UserId>, WorkflowError> {
        self.running_delegators_of(user, now).await
    }
}

/// One row of a user joined with the roles it holds: one row per role, or one with no role.
#[derive(Queryable, Selectable)]
#[diesel(check_for_backend(diesel::pg::Pg))]
struct UserRow {
    #[diesel(select_expression = users::id)]
    id: i64,
    #[diesel(select_expression = users::name)]
    name: String,
    #[diesel(select_expression = users::active)]
    active: bool,
    #[diesel(select_expression = user_roles::role.nullable())]
    role: Option<String>,
}

/// Folds rows ordered by user (then role) into users with their roles in that order.
fn into_users(rows: Vec<UserRow>) -> Result<Vec<User>, WorkflowError> {
    let mut found: Vec<User> = Vec::new();
    for row in rows {
        let id = stored_user_id(row.id)?;
        if found.last().is_none_or(|last| last.id != id) {
            found.push(User {
                id,
                name: row.name,
                roles: Vec::new(),
                active: row.active,
            });
        }
        if let Some(role) = row.role {
            let role = RoleName::new(role.clone())
                .map_err(|_| WorkflowError::internal(format!("stored role '{role}' is invalid")))?;
            if let Some(user) = found.last_mut() {
                user.roles.push(role);
            }
        }
    }
    Ok(found)
}

/// Creates the user or replaces its name and active flag; returns whether it was created.
async fn upsert_user(
    conn: &mut Conn,
    id: UserId,
    name: &str,
    active: bool,
) -> Result<bool, DieselError> {
    diesel::insert_into(users::table)
        .values((
            users::id.eq(id.get()),
            users::name.eq(name),
            users::active.eq(active),
        ))
        .on_conflict(users::id)
        .do_update()
        .set((users::name.eq(name), users::active.eq(active)))
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
    /// Adds a user (or renames one), leaving its roles and active flag as they are; a new user
    /// is active.
    pub async fn add_user(&self, id: UserId, name: &str) -> Result<(), WorkflowError> {
        self.with_conn(async |conn| {
            diesel::insert_into(users::table)
                .values((users::id.eq(id.get()), users::name.eq(name)))
                .on_conflict(users::id)
                .do_update()
                .set(users::name.eq(name))
                .execute(conn)
                .await?;
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
