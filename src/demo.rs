//! The demo data set, defined once: users and roles, the four business templates, the property
//! records of the demo, and the sample instance. Part of the wiring, beside `app`: it reaches the
//! stores only through the same operations any client data does (the driving port's `put_user`,
//! `create_template` and `trigger`), plus the PostgreSQL adapter's property tables. Clients rely
//! on its ids: on an empty store the templates get ids 1 to 4 and the sample instance id 1.

use crate::domain::WorkflowError;
use crate::domain::model::{
    Approver, Condition, EntityId, EntityType, EventName, NewTemplate, Quorum, RoleName,
    TemplateId, TemplateStep, TriggerRequest, User, UserId,
};
use crate::domain::ports::WorkflowUseCases;
use crate::outbound::postgres::{Booking, Commission, Project, PropertyRecords, Unit};

/// Everything the demo consists of.
#[derive(Debug, Clone)]
pub struct DemoData {
    pub users: Vec<User>,
    /// Created in order, so that they get ids 1, 2, 3, 4 on an empty store.
    pub templates: Vec<NewTemplate>,
    /// The property-management records (PostgreSQL only: the in-memory store has no such tables).
    pub properties: PropertyRecords,
    /// The one instance the demo starts with: booking 1's cancellation.
    pub sample_instance: TriggerRequest,
}

/// Loads the demo's users, templates and sample instance through the use cases. Returns `false`
/// and changes nothing if the store already has template 1 (the demo, or other data, is there).
pub async fn load<S: WorkflowUseCases>(
    service: &S,
    demo: &DemoData,
) -> Result<bool, WorkflowError> {
    let first = TemplateId::new(1)?;
    match service.template(first).await {
        Ok(_) => return Ok(false),
        Err(WorkflowError::NotFound { .. }) => {}
        Err(other) => return Err(other),
    }
    for user in &demo.users {
        service.put_user(user.clone()).await?;
    }
    for template in &demo.templates {
        service.create_template(template.clone(), None).await?;
    }
    match service.trigger(demo.sample_instance.clone(), None).await {
        Ok(_) | Err(WorkflowError::InstanceAlreadyActive { .. }) => Ok(true),
        Err(e) => Err(e),
    }
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
        quorum: Quorum::default(),
        when: None,
        due: None,
    }
}

fn template(name: &str, event: &str, entity_type: &str, steps: Vec<TemplateStep>) -> NewTemplate {
    NewTemplate {
        name: name.to_owned(),
        event: EventName::new(event).expect("demo events are valid"),
        entity_type: EntityType::new(entity_type).expect("demo entity types are valid"),
        is_active: true,
        forbid_self_approval: false,
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
        users: vec![
            User {
                id: user(1),
                name: "Sales Manager".to_owned(),
                roles: vec![role("sales_manager")],
                active: true,
            },
            User {
                id: user(2),
                name: "Finance Manager".to_owned(),
                roles: vec![role("finance_manager")],
                active: true,
            },
            User {
                id: user(3),
                name: "Sales Coordinator".to_owned(),
                roles: vec![role("sales_coordinator")],
                active: true,
            },
        ],
        templates: vec![
            template(
                "Booking cancellation",
                "booking.cancellation_requested",
                "booking",
                vec![
                    step(1, "Sales manager review", by_role("sales_manager")),
                    step(2, "Finance manager approval", by_role("finance_manager")),
                ],
            ),
            template(
                "Unit price update",
                "unit.price_update_requested",
                "unit",
                vec![
                    step(1, "Sales manager review", by_role("sales_manager")),
                    step(2, "Finance sign-off", Approver::User { user_id: user(2) }),
                ],
            ),
            template(
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
            template(
                "Unit discount",
                "unit.discount_requested",
                "unit",
                vec![
                    step(1, "Sales manager review", by_role("sales_manager")),
                    // Finance looks only at the larger discounts.
                    TemplateStep {
                        when: Some(
                            Condition::new("context.discount_percent > 10")
                                .expect("the demo condition is valid"),
                        ),
                        ..step(2, "Finance manager approval", by_role("finance_manager"))
                    },
                ],
            ),
        ],
        properties: PropertyRecords {
            projects: vec![
                Project {
                    id: 1,
                    name: "Marina Heights".to_owned(),
                },
                Project {
                    id: 2,
                    name: "Palm Gardens".to_owned(),
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
                customer_name: customer_name.to_owned(),
                status: "confirmed".to_owned(),
            })
            .collect(),
            commissions: (1..=5)
                .map(|id| Commission {
                    id,
                    booking_id: id,
                    agent_user_id: user(3),
                    amount_cents: 500_000 + id * 25_000,
                    status: "pending".to_owned(),
                })
                .collect(),
        },
        sample_instance: TriggerRequest {
            event: EventName::new("booking.cancellation_requested").expect("valid"),
            entity_type: EntityType::new("booking").expect("valid"),
            entity_id: EntityId::new(1).expect("positive"),
            initiated_by: user(3),
            context: Some(serde_json::json!({"reason": "customer relocating"})),
        },
    }
}
