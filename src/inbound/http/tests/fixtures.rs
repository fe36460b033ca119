//! Test fixtures of the HTTP adapter's route tests, defined once: the data the in-memory store
//! is loaded with (through the driving port, as any client data), and the domain values mock
//! expectations answer with.

use std::sync::Arc;

use chrono::{DateTime, TimeZone, Utc};
use serde_json::json;
use tokio::sync::Notify;

use crate::domain::model::{
    Approver, AuditAction, AuditEntry, AuditHash, EntityId, EntityType, EventName, Instance,
    InstanceId, InstanceStatus, InstanceStep, NewTemplate, PendingStep, RoleName, StepApproval,
    StepId, StepStatus, Template, TemplateId, TemplateStep, TriggerRequest, User, UserId,
};
use crate::domain::ports::WorkflowUseCases;
use crate::outbound::memory::MemoryStore;

pub fn user(id: i64) -> UserId {
    UserId::new(id).unwrap()
}

pub fn role(name: &str) -> Approver {
    Approver::Role {
        role: RoleName::new(name).unwrap(),
    }
}

pub fn by_user(id: i64) -> Approver {
    Approver::User { user_id: user(id) }
}

/// Users 1 to 3 with the roles they start with.
const USERS: [(i64, &str, &str); 3] = [
    (1, "Sales Manager", "sales_manager"),
    (2, "Finance Manager", "finance_manager"),
    (3, "Sales Coordinator", "sales_coordinator"),
];

/// User `id` (one of [`USERS`]) holding exactly `roles`.
pub fn user_with_roles(id: i64, roles: &[&str]) -> User {
    let (_, name, _) = USERS
        .iter()
        .find(|(user, ..)| *user == id)
        .expect("a fixture user");
    User {
        id: user(id),
        name: (*name).to_owned(),
        roles: roles.iter().map(|r| RoleName::new(*r).unwrap()).collect(),
        active: true,
    }
}

fn step(step_order: i32, name: &str, approver: Approver) -> TemplateStep {
    TemplateStep {
        step_order,
        name: name.to_owned(),
        approver,
        quorum: Default::default(),
        when: None,
        due: None,
    }
}

/// Templates 1 to 3, in creation order.
fn templates() -> Vec<NewTemplate> {
    let template = |name: &str, event: &str, entity_type: &str, steps| NewTemplate {
        name: name.to_owned(),
        event: EventName::new(event).unwrap(),
        entity_type: EntityType::new(entity_type).unwrap(),
        is_active: true,
        forbid_self_approval: false,
        steps,
    };
    vec![
        template(
            "Booking cancellation",
            "booking.cancellation_requested",
            "booking",
            vec![
                step(1, "Sales manager review", role("sales_manager")),
                step(2, "Finance manager approval", role("finance_manager")),
            ],
        ),
        template(
            "Unit price update",
            "unit.price_update_requested",
            "unit",
            vec![
                step(1, "Sales manager review", role("sales_manager")),
                step(2, "Finance sign-off", by_user(2)),
            ],
        ),
        template(
            "Commission approval",
            "commission.approval_requested",
            "commission",
            vec![
                step(1, "Finance manager review", role("finance_manager")),
                step(2, "Sales manager sign-off", by_user(1)),
            ],
        ),
    ]
}

/// The real service over a fresh in-memory store, loaded through the port: the users, the
/// templates (ids 1 to 3) and booking 1's cancellation (instance 1, steps 1 and 2).
pub async fn loaded_service() -> impl WorkflowUseCases {
    let store = Arc::new(MemoryStore::new());
    let service = crate::app::service(store, Arc::new(Notify::new()));
    for (id, _, role) in USERS {
        service
            .put_user(user_with_roles(id, &[role]))
            .await
            .expect("a fixture user is stored");
    }
    for template in templates() {
        service
            .create_template(template, None)
            .await
            .expect("a fixture template is stored");
    }
    service
        .trigger(
            TriggerRequest {
                event: EventName::new("booking.cancellation_requested").unwrap(),
                entity_type: EntityType::new("booking").unwrap(),
                entity_id: EntityId::new(1).unwrap(),
                initiated_by: user(3),
                context: Some(json!({"reason": "customer relocating"})),
            },
            None,
        )
        .await
        .expect("the fixture instance is created");
    service
}

// ----- values for mock answers -----

/// 2024-05-01T10:00:00.123456Z plus `minutes`.
pub fn at(minutes: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 5, 1, 10, 0, 0).unwrap()
        + chrono::Duration::microseconds(123_456)
        + chrono::Duration::minutes(minutes)
}

/// Instance 2: booking 2's cancellation, step 3 approved by user 1 with a comment, step 4
/// awaiting user 2.
pub fn instance() -> Instance {
    let id = InstanceId::new(2).unwrap();
    let audit =
        |audit_id: i64, step: Option<i64>, action, actor: Option<i64>, minutes| AuditEntry {
            id: audit_id,
            instance_id: id,
            step_id: step.map(|s| StepId::new(s).unwrap()),
            action,
            actor_user_id: actor.map(user),
            on_behalf_of: None,
            comment: None,
            at: at(minutes),
            hash: AuditHash::from_bytes([audit_id as u8; 32]),
        };
    let mut approved = audit(7, Some(3), AuditAction::StepApproved, Some(1), 5);
    approved.comment = Some("Fine.".to_owned());
    Instance {
        id,
        template_id: TemplateId::new(1).unwrap(),
        template_version: 1,
        event: EventName::new("booking.cancellation_requested").unwrap(),
        entity_type: EntityType::new("booking").unwrap(),
        entity_id: EntityId::new(2).unwrap(),
        initiated_by: user(3),
        status: InstanceStatus::InProgress,
        context: Some(json!({"reason": "moving abroad", "refund_cents": 125_000})),
        created_at: at(0),
        updated_at: at(5),
        completed_at: None,
        steps: vec![
            InstanceStep {
                id: StepId::new(3).unwrap(),
                step_order: 1,
                name: "Sales manager review".to_owned(),
                approver: role("sales_manager"),
                eligible_user_ids: vec![user(1)],
                status: StepStatus::Approved,
                acted_by_user_id: Some(user(1)),
                comment: Some("Fine.".to_owned()),
                acted_at: Some(at(5)),
                activated_at: Some(at(0)),
                due: None,
                due_at: None,
                overdue_at: None,
                quorum: 1,
                approvals: vec![StepApproval {
                    user_id: user(1),
                    comment: Some("Fine.".to_owned()),
                    at: at(5),
                    acted_by: None,
                }],
            },
            InstanceStep {
                id: StepId::new(4).unwrap(),
                step_order: 2,
                name: "Finance sign-off".to_owned(),
                approver: by_user(2),
                eligible_user_ids: vec![user(2)],
                status: StepStatus::AwaitingAction,
                acted_by_user_id: None,
                comment: None,
                acted_at: None,
                activated_at: Some(at(5)),
                due: None,
                due_at: None,
                overdue_at: None,
                quorum: 1,
                approvals: Vec::new(),
            },
        ],
        audit: vec![
            audit(5, None, AuditAction::InstanceCreated, Some(3), 0),
            audit(6, Some(3), AuditAction::StepActivated, None, 0),
            approved,
            audit(8, Some(4), AuditAction::StepActivated, None, 5),
        ],
    }
}

/// Template 2 at version 3, inactive.
pub fn template() -> Template {
    Template {
        id: TemplateId::new(2).unwrap(),
        name: "Unit price update".to_owned(),
        event: EventName::new("unit.price_update_requested").unwrap(),
        entity_type: EntityType::new("unit").unwrap(),
        version: 3,
        is_active: false,
        forbid_self_approval: true,
        steps: vec![
            step(1, "Sales manager review", role("sales_manager")),
            step(2, "Finance sign-off", by_user(2)),
        ],
    }
}

/// Step 4 of instance 2, awaiting user 2.
pub fn pending_step() -> PendingStep {
    PendingStep {
        step_id: StepId::new(4).unwrap(),
        step_order: 2,
        name: "Finance sign-off".to_owned(),
        approver: by_user(2),
        activated_at: Some(at(5)),
        instance_id: InstanceId::new(2).unwrap(),
        event: EventName::new("booking.cancellation_requested").unwrap(),
        entity_type: EntityType::new("booking").unwrap(),
        entity_id: EntityId::new(2).unwrap(),
        on_behalf_of: None,
    }
}

/// [`instance`] as clients have always received it, byte for byte.
pub const INSTANCE_JSON: &str = concat!(
    r#"{"id":2,"template_id":1,"template_version":1,"event":"booking.cancellation_requested","#,
    r#""entity_type":"booking","entity_id":2,"initiated_by":3,"status":"in_progress","#,
    r#""context":{"reason":"moving abroad","refund_cents":125000},"#,
    r#""created_at":"2024-05-01T10:00:00.123456Z","updated_at":"2024-05-01T10:05:00.123456Z","#,
    r#""completed_at":null,"steps":["#,
    r#"{"id":3,"step_order":1,"name":"Sales manager review","#,
    r#""approver":{"role":"sales_manager","type":"role"},"eligible_user_ids":[1],"#,
    r#""status":"approved","acted_by_user_id":1,"comment":"Fine.","#,
    r#""acted_at":"2024-05-01T10:05:00.123456Z","activated_at":"2024-05-01T10:00:00.123456Z","#,
    r#""quorum":1,"approvals":[{"user_id":1,"comment":"Fine.","at":"2024-05-01T10:05:00.123456Z"}],"due_at":null},"#,
    r#"{"id":4,"step_order":2,"name":"Finance sign-off","approver":{"type":"user","user_id":2},"#,
    r#""eligible_user_ids":[2],"status":"awaiting_action","acted_by_user_id":null,"#,
    r#""comment":null,"acted_at":null,"activated_at":"2024-05-01T10:05:00.123456Z","#,
    r#""quorum":1,"approvals":[],"due_at":null}],"#,
    r#""audit":["#,
    r#"{"id":5,"instance_id":2,"step_id":null,"action":"instance_created","actor_user_id":3,"#,
    r#""comment":null,"at":"2024-05-01T10:00:00.123456Z","#,
    r#""hash":"0505050505050505050505050505050505050505050505050505050505050505"},"#,
    r#"{"id":6,"instance_id":2,"step_id":3,"action":"step_activated","actor_user_id":null,"#,
    r#""comment":null,"at":"2024-05-01T10:00:00.123456Z","#,
    r#""hash":"0606060606060606060606060606060606060606060606060606060606060606"},"#,
    r#"{"id":7,"instance_id":2,"step_id":3,"action":"step_approved","actor_user_id":1,"#,
    r#""comment":"Fine.","at":"2024-05-01T10:05:00.123456Z","#,
    r#""hash":"0707070707070707070707070707070707070707070707070707070707070707"},"#,
    r#"{"id":8,"instance_id":2,"step_id":4,"action":"step_activated","actor_user_id":null,"#,
    r#""comment":null,"at":"2024-05-01T10:05:00.123456Z","#,
    r#""hash":"0808080808080808080808080808080808080808080808080808080808080808"}]}"#,
);

/// [`template`] as clients have always received it, byte for byte.
pub const TEMPLATE_JSON: &str = concat!(
    r#"{"id":2,"name":"Unit price update","event":"unit.price_update_requested","#,
    r#""entity_type":"unit","version":3,"is_active":false,"forbid_self_approval":true,"#,
    r#""steps":["#,
    r#"{"step_order":1,"name":"Sales manager review","#,
    r#""approver":{"role":"sales_manager","type":"role"},"quorum":1},"#,
    r#"{"step_order":2,"name":"Finance sign-off","approver":{"type":"user","user_id":2},"#,
    r#""quorum":1}]}"#,
);

/// An inbox page of [`pending_step`] as clients have always received it, byte for byte.
pub const INBOX_JSON: &str = concat!(
    r#"{"items":[{"step_id":4,"step_order":2,"name":"Finance sign-off","#,
    r#""approver":{"type":"user","user_id":2},"activated_at":"2024-05-01T10:05:00.123456Z","#,
    r#""instance_id":2,"event":"booking.cancellation_requested","entity_type":"booking","#,
    r#""entity_id":2}],"next":null}"#,
);
