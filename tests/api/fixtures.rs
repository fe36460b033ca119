//! Test fixtures, defined once for the whole binary: short constructors for the domain's parsed
//! values (ids, names, approvers, users), fixed instants, and templates, including the demo's
//! templates as the store holds them once the demo is loaded.

use approvals::demo::demo_data;
use approvals::domain::model::{
    Approver, EntityId, EntityType, EventName, NewTemplate, RoleName, StepId, Template, TemplateId,
    TemplateStep, TriggerRequest, User, UserId,
};
use chrono::{DateTime, TimeDelta, TimeZone, Utc};

/// The demo's three events; on a store loaded with the demo, templates 1, 2 and 3 in that order.
pub const CANCELLATION: &str = "booking.cancellation_requested";
pub const PRICE_UPDATE: &str = "unit.price_update_requested";
pub const COMMISSION: &str = "commission.approval_requested";

pub fn uid(id: i64) -> UserId {
    UserId::new(id).unwrap()
}

pub fn sid(id: i64) -> StepId {
    StepId::new(id).unwrap()
}

pub fn tid(id: i64) -> TemplateId {
    TemplateId::new(id).unwrap()
}

pub fn role(name: &str) -> RoleName {
    RoleName::new(name).unwrap()
}

pub fn by_role(name: &str) -> Approver {
    Approver::Role { role: role(name) }
}

pub fn by_user(id: i64) -> Approver {
    Approver::User { user_id: uid(id) }
}

pub fn event(name: &str) -> EventName {
    EventName::new(name).unwrap()
}

pub fn entity_type(name: &str) -> EntityType {
    EntityType::new(name).unwrap()
}

/// A directory entry holding `roles`.
pub fn user(id: i64, name: &str, roles: &[&str]) -> User {
    User {
        id: uid(id),
        name: name.to_owned(),
        roles: roles.iter().map(|r| role(r)).collect(),
        active: true,
    }
}

/// 2026-03-02 at `h:m:s`, plus a fixed fraction so that sub-second precision is checked too.
/// Whole microseconds: the precision PostgreSQL stores.
pub fn at(h: u32, m: u32, s: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 2, h, m, s).unwrap() + TimeDelta::microseconds(123_456)
}

/// A time no lease or retry in the suite reaches.
pub fn far_future() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2100, 1, 1, 0, 0, 0).unwrap()
}

/// A validated trigger for an entity.
pub fn request(
    event_name: &str,
    kind: &str,
    entity_id: i64,
    by: i64,
    context: Option<serde_json::Value>,
) -> TriggerRequest {
    TriggerRequest {
        event: event(event_name),
        entity_type: entity_type(kind),
        entity_id: EntityId::new(entity_id).unwrap(),
        initiated_by: uid(by),
        context,
    }
}

pub fn step(step_order: i32, name: &str, approver: Approver) -> TemplateStep {
    TemplateStep {
        step_order,
        name: name.to_owned(),
        approver,
        quorum: Default::default(),
        when: None,
        due: None,
    }
}

/// A template at version 1 with a chosen id, for the stores' `put_template`.
pub fn template(
    id: i64,
    name: &str,
    event_name: &str,
    kind: &str,
    is_active: bool,
    steps: Vec<TemplateStep>,
) -> Template {
    Template {
        id: tid(id),
        name: name.to_owned(),
        event: event(event_name),
        entity_type: entity_type(kind),
        version: 1,
        is_active,
        forbid_self_approval: false,
        steps,
    }
}

/// `new` as a store returns it once created with id `id`: at version 1.
pub fn stored(id: i64, new: NewTemplate) -> Template {
    Template {
        id: tid(id),
        name: new.name,
        event: new.event,
        entity_type: new.entity_type,
        version: 1,
        is_active: new.is_active,
        forbid_self_approval: new.forbid_self_approval,
        steps: new.steps,
    }
}

/// The demo's template `index` (0-based) as a store holds it after loading the demo into an
/// empty store: id `index + 1`, version 1.
pub fn demo_template(index: usize) -> Template {
    let new = demo_data()
        .templates
        .into_iter()
        .nth(index)
        .expect("the demo has this template");
    stored(index as i64 + 1, new)
}
