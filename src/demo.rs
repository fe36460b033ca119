//! The demo data set, defined once: users and roles, the three business templates, the property
//! records of the demo, and the sample instance. Both repository adapters load it (`seed`, and
//! the in-memory mode); clients rely on its ids.

use crate::domain::model::{
    Approver, EntityId, EntityType, EventName, RoleName, Template, TemplateId, TemplateStep,
    TriggerRequest, UserId,
};

/// A demo user with the roles it holds.
#[derive(Debug, Clone)]
pub struct DemoUser {
    pub id: UserId,
    pub name: &'static str,
    pub roles: Vec<RoleName>,
}

/// A development project.
#[derive(Debug, Clone)]
pub struct Project {
    pub id: i64,
    pub name: &'static str,
}

/// A sellable unit of a project; prices in cents.
#[derive(Debug, Clone)]
pub struct Unit {
    pub id: i64,
    pub project_id: i64,
    pub code: String,
    pub price_cents: i64,
}

/// A customer's booking of a unit.
#[derive(Debug, Clone)]
pub struct Booking {
    pub id: i64,
    pub unit_id: i64,
    pub customer_name: &'static str,
    pub status: &'static str,
}

/// A sales commission earned on a booking; amounts in cents.
#[derive(Debug, Clone)]
pub struct Commission {
    pub id: i64,
    pub booking_id: i64,
    pub agent_user_id: UserId,
    pub amount_cents: i64,
    pub status: &'static str,
}

/// Everything the demo consists of.
#[derive(Debug, Clone)]
pub struct DemoData {
    pub roles: Vec<RoleName>,
    pub users: Vec<DemoUser>,
    pub templates: Vec<Template>,
    pub projects: Vec<Project>,
    pub units: Vec<Unit>,
    pub bookings: Vec<Booking>,
    pub commissions: Vec<Commission>,
    /// The one instance the demo starts with: booking 1's cancellation.
    pub sample_instance: TriggerRequest,
}

fn role(name: &str) -> RoleName {
    RoleName::new(name).expect("demo role names are valid")
}

fn user(id: i64) -> UserId {
    UserId::new(id).expect("demo user ids are positive")
}

fn step(step_order: i32, name: &str, approver: Approver) -> TemplateStep {
    TemplateStep {
        step_order,
        name: name.to_owned(),
        approver,
    }
}

fn template(
    id: i64,
    name: &str,
    event: &str,
    entity_type: &str,
    steps: Vec<TemplateStep>,
) -> Template {
    Template {
        id: TemplateId::new(id).expect("demo template ids are positive"),
        name: name.to_owned(),
        event: EventName::new(event).expect("demo events are valid"),
        entity_type: EntityType::new(entity_type).expect("demo entity types are valid"),
        version: 1,
        is_active: true,
        steps,
    }
}

/// The demo data set.
pub fn demo_data() -> DemoData {
    let by_role = |name: &str| Approver::Role { role: role(name) };
    let units: Vec<Unit> = (1..=10)
        .map(|id| {
            let project_id = if id <= 5 { 1 } else { 2 };
            Unit {
                id,
                project_id,
                code: format!("{}-{:02}", if project_id == 1 { "MH" } else { "PG" }, id),
                price_cents: 25_000_000 + id * 1_000_000,
            }
        })
        .collect();
    DemoData {
        roles: vec![
            role("sales_manager"),
            role("finance_manager"),
            role("sales_coordinator"),
        ],
        users: vec![
            DemoUser {
                id: user(1),
                name: "Sales Manager",
                roles: vec![role("sales_manager")],
            },
            DemoUser {
                id: user(2),
                name: "Finance Manager",
                roles: vec![role("finance_manager")],
            },
            DemoUser {
                id: user(3),
                name: "Sales Coordinator",
                roles: vec![role("sales_coordinator")],
            },
        ],
        templates: vec![
            template(
                1,
                "Booking cancellation",
                "booking.cancellation_requested",
                "booking",
                vec![
                    step(1, "Sales manager review", by_role("sales_manager")),
                    step(2, "Finance manager approval", by_role("finance_manager")),
                ],
            ),
            template(
                2,
                "Unit price update",
                "unit.price_update_requested",
                "unit",
                vec![
                    step(1, "Sales manager review", by_role("sales_manager")),
                    step(2, "Finance sign-off", Approver::User { user_id: user(2) }),
                ],
            ),
            template(
                3,
                "Commission approval",
                "commission.approval_requested",
                "commission",
                vec![
                    step(1, "Finance manager review", by_role("finance_manager")),
                    step(
                        2,
                        "Sales manager sign-off",
                        Approver::User { user_id: user(1) },
                    ),
                ],
            ),
        ],
        projects: vec![
            Project {
                id: 1,
                name: "Marina Heights",
            },
            Project {
                id: 2,
                name: "Palm Gardens",
            },
        ],
        units,
        bookings: [
            (1, 1, "Amal Haddad"),
            (2, 2, "Ben Okafor"),
            (3, 6, "Chen Wei"),
            (4, 7, "Dana Levi"),
            (5, 3, "Emre Yilmaz"),
        ]
        .into_iter()
        .map(|(id, unit_id, customer_name)| Booking {
            id,
            unit_id,
            customer_name,
            status: "confirmed",
        })
        .collect(),
        commissions: (1..=5)
            .map(|id| Commission {
                id,
                booking_id: id,
                agent_user_id: user(3),
                amount_cents: 500_000 + id * 25_000,
                status: "pending",
            })
            .collect(),
        sample_instance: TriggerRequest {
            event: EventName::new("booking.cancellation_requested").expect("valid"),
            entity_type: EntityType::new("booking").expect("valid"),
            entity_id: EntityId::new(1).expect("positive"),
            initiated_by: user(3),
            context: Some(serde_json::json!({"reason": "customer relocating"})),
        },
    }
}
