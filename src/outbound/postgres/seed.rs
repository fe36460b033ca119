//! Loading reference data into PostgreSQL: the demo set (`seed`), and the directory and
//! template helpers that tests and operators use.

use diesel::prelude::*;
use diesel::result::Error as DieselError;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};

use super::rows::TemplateStepRow;
use super::schema::{
    bookings, commissions, projects, roles, units, user_roles, users, workflow_template_steps,
    workflow_templates,
};
use super::{PgStore, TxError};
use crate::demo::DemoData;
use crate::domain::WorkflowError;
use crate::domain::model::{RoleName, Template, UserId};

impl PgStore {
    /// Loads the demo's users, roles, templates and property records. Idempotent: returns
    /// `true` if the store had no users before (a fresh store), `false` if it was seeded.
    pub async fn load_reference_data(&self, demo: &DemoData) -> Result<bool, WorkflowError> {
        self.with_conn(async |conn| {
            conn.transaction::<_, TxError, _>(async |conn| {
                let fresh = users::table.count().get_result::<i64>(conn).await? == 0;
                let role_rows: Vec<_> = demo.roles.iter().map(|r| roles::name.eq(r.as_str())).collect();
                diesel::insert_into(roles::table).values(&role_rows).on_conflict_do_nothing().execute(conn).await?;
                for user in &demo.users {
                    diesel::insert_into(users::table)
                        .values((users::id.eq(user.id.get()), users::name.eq(user.name)))
                        .on_conflict_do_nothing()
                        .execute(conn)
                        .await?;
                    let memberships: Vec<_> = user
                        .roles
                        .iter()
                        .map(|r| (user_roles::role.eq(r.as_str()), user_roles::user_id.eq(user.id.get())))
                        .collect();
                    diesel::insert_into(user_roles::table).values(&memberships).on_conflict_do_nothing().execute(conn).await?;
                }
                for template in &demo.templates {
                    insert_template(conn, template).await?;
                }
                diesel::sql_query(
                    "SELECT setval('workflow_templates_id_seq', GREATEST((SELECT max(id) FROM workflow_templates), 1))",
                )
                .execute(conn)
                .await?;
                for p in &demo.projects {
                    diesel::insert_into(projects::table)
                        .values((projects::id.eq(p.id), projects::name.eq(p.name)))
                        .on_conflict_do_nothing()
                        .execute(conn)
                        .await?;
                }
                for u in &demo.units {
                    diesel::insert_into(units::table)
                        .values((
                            units::id.eq(u.id),
                            units::project_id.eq(u.project_id),
                            units::code.eq(&u.code),
                            units::price_cents.eq(u.price_cents),
                        ))
                        .on_conflict_do_nothing()
                        .execute(conn)
                        .await?;
                }
                for b in &demo.bookings {
                    diesel::insert_into(bookings::table)
                        .values((
                            bookings::id.eq(b.id),
                            bookings::unit_id.eq(b.unit_id),
                            bookings::customer_name.eq(b.customer_name),
                            bookings::status.eq(b.status),
                        ))
                        .on_conflict_do_nothing()
                        .execute(conn)
                        .await?;
                }
                for c in &demo.commissions {
                    diesel::insert_into(commissions::table)
                        .values((
                            commissions::id.eq(c.id),
                            commissions::booking_id.eq(c.booking_id),
                            commissions::agent_user_id.eq(c.agent_user_id.get()),
                            commissions::amount_cents.eq(c.amount_cents),
                            commissions::status.eq(c.status),
                        ))
                        .on_conflict_do_nothing()
                        .execute(conn)
                        .await?;
                }
                Ok(fresh)
            })
            .await
        })
        .await
    }

    /// Adds a user (or renames one).
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
        roles: &[RoleName],
    ) -> Result<(), WorkflowError> {
        self.with_conn(async |conn| {
            conn.transaction::<_, TxError, _>(async |conn| {
                diesel::delete(user_roles::table.filter(user_roles::user_id.eq(user.get())))
                    .execute(conn)
                    .await?;
                for role in roles {
                    diesel::insert_into(roles::table)
                        .values(roles::name.eq(role.as_str()))
                        .on_conflict_do_nothing()
                        .execute(conn)
                        .await?;
                    diesel::insert_into(user_roles::table)
                        .values((
                            user_roles::role.eq(role.as_str()),
                            user_roles::user_id.eq(user.get()),
                        ))
                        .execute(conn)
                        .await?;
                }
                Ok(())
            })
            .await
        })
        .await
    }

    /// Adds a template as given (its id included).
    pub async fn put_template(&self, template: &Template) -> Result<(), WorkflowError> {
        self.with_conn(async |conn| {
            conn.transaction::<_, TxError, _>(async |conn| {
                if insert_template(conn, template).await? {
                    Ok(())
                } else {
                    Err(
                        WorkflowError::validation("id", format!("template {} exists", template.id))
                            .into(),
                    )
                }
            })
            .await
        })
        .await
    }
}

/// Inserts a template and its steps unless a template with its id exists; returns whether it
/// inserted.
async fn insert_template(
    conn: &mut AsyncPgConnection,
    template: &Template,
) -> Result<bool, DieselError> {
    let inserted = diesel::insert_into(workflow_templates::table)
        .values((
            workflow_templates::id.eq(template.id.get()),
            workflow_templates::name.eq(&template.name),
            workflow_templates::event.eq(template.event.as_str()),
            workflow_templates::entity_type.eq(template.entity_type.as_str()),
            workflow_templates::version.eq(template.version),
            workflow_templates::is_active.eq(template.is_active),
        ))
        .on_conflict_do_nothing()
        .execute(conn)
        .await?;
    if inserted == 0 {
        return Ok(false);
    }
    let steps: Vec<_> = template
        .steps
        .iter()
        .map(|s| TemplateStepRow::new(template.id, s))
        .collect();
    diesel::insert_into(workflow_template_steps::table)
        .values(&steps)
        .execute(conn)
        .await?;
    Ok(true)
}
