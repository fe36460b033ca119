//! Outbound adapter, PostgreSQL: the platform's property records (projects, units, bookings,
//! commissions). The workflow engine never reads them and no port knows them; they live in the
//! same database so that the platform's entities exist where the demo and operators expect them.

use diesel::prelude::*;
use diesel_async::{AsyncConnection, RunQueryDsl};

use super::PgStore;
use super::errors::TxError;
use super::schema::{bookings, commissions, projects, units};
use crate::domain::WorkflowError;
use crate::domain::model::UserId;

/// A property development.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Project {
    pub id: i64,
    pub name: String,
}

/// A sellable unit of a project; prices in cents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unit {
    pub id: i64,
    pub project_id: i64,
    pub code: String,
    pub price_cents: i64,
}

/// A customer's booking of a unit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Booking {
    pub id: i64,
    pub unit_id: i64,
    pub customer_name: String,
    pub status: String,
}

/// A sales commission earned on a booking; amounts in cents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Commission {
    pub id: i64,
    pub booking_id: i64,
    pub agent_user_id: UserId,
    pub amount_cents: i64,
    pub status: String,
}

/// A set of property records to load.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PropertyRecords {
    pub projects: Vec<Project>,
    pub units: Vec<Unit>,
    pub bookings: Vec<Booking>,
    pub commissions: Vec<Commission>,
}

impl PgStore {
    /// Loads `records`, all or nothing. Idempotent: a record whose id is stored already is left
    /// as it is. Commissions name their agent, who must be a user by then.
    pub async fn load_property_records(
        &self,
        records: &PropertyRecords,
    ) -> Result<(), WorkflowError> {
        self.with_conn(async |conn| {
            conn.transaction::<_, TxError, _>(async |conn| {
                // Parents first: units refer to projects, bookings to units, commissions to
                // bookings.
                if !records.projects.is_empty() {
                    let rows: Vec<_> = records
                        .projects
                        .iter()
                        .map(|p| (projects::id.eq(p.id), projects::name.eq(&p.name)))
                        .collect();
                    diesel::insert_into(projects::table)
                        .values(&rows)
                        .on_conflict_do_nothing()
                        .execute(conn)
                        .await?;
                }
                if !records.units.is_empty() {
                    let rows: Vec<_> = records
                        .units
                        .iter()
                        .map(|u| {
                            (
                                units::id.eq(u.id),
                                units::project_id.eq(u.project_id),
                                units::code.eq(&u.code),
                                units::price_cents.eq(u.price_cents),
                            )
                        })
                        .collect();
                    diesel::insert_into(units::table)
                        .values(&rows)
                        .on_conflict_do_nothing()
                        .execute(conn)
                        .await?;
                }
                if !records.bookings.is_empty() {
                    let rows: Vec<_> = records
                        .bookings
                        .iter()
                        .map(|b| {
                            (
                                bookings::id.eq(b.id),
                                bookings::unit_id.eq(b.unit_id),
                                bookings::customer_name.eq(&b.customer_name),
                                bookings::status.eq(&b.status),
                            )
                        })
                        .collect();
                    diesel::insert_into(bookings::table)
                        .values(&rows)
                        .on_conflict_do_nothing()
                        .execute(conn)
                        .await?;
                }
                if !records.commissions.is_empty() {
                    let rows: Vec<_> = records
                        .commissions
                        .iter()
                        .map(|c| {
                            (
                                commissions::id.eq(c.id),
                                commissions::booking_id.eq(c.booking_id),
                                commissions::agent_user_id.eq(c.agent_user_id.get()),
                                commissions::amount_cents.eq(c.amount_cents),
                                commissions::status.eq(&c.status),
                            )
                        })
                        .collect();
                    diesel::insert_into(commissions::table)
                        .values(&rows)
                        .on_conflict_do_nothing()
                        .execute(conn)
                        .await?;
                }
                Ok(())
            })
            .await
        })
        .await
    }
}
