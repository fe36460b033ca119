//! The published shape of an event (outbound wire format): the JSON envelope every external
//! adapter (webhooks, NATS) sends, built from an outbox item. One function, so that every
//! receiver sees the same bytes for the same event, whichever way it came.

use chrono::SecondsFormat;
use serde::Serialize;

use crate::domain::model::OutboxItem;

/// `{"id","type","occurred_at","data":{...}}`, serialized. `id` is the event's public id, stable
/// across redeliveries; `data.instance.sequence` orders an instance's events.
pub fn envelope_json(item: &OutboxItem) -> Vec<u8> {
    let event = &item.event;
    let envelope = Envelope {
        id: &item.event_id,
        r#type: event.kind.event_type(),
        occurred_at: event.at.to_rfc3339_opts(SecondsFormat::Micros, true),
        data: Data {
            instance: Instance {
                id: event.instance_id.get(),
                event: event.event.as_str(),
                entity_type: event.entity_type.as_str(),
                entity_id: event.entity_id.get(),
                status: event.status.as_str(),
                sequence: item.sequence,
            },
            step: event.step.as_ref().map(|step| Step {
                id: step.id.get(),
                step_order: step.step_order,
                name: &step.name,
                eligible_user_ids: step.eligible_user_ids.iter().map(|u| u.get()).collect(),
            }),
            actor_id: event.decided_by.map(|u| u.get()),
            comment: event.comment.as_deref(),
        },
    };
    // Serializing borrowed strings and integers into a Vec can't fail.
    serde_json::to_vec(&envelope).unwrap_or_default()
}

#[derive(Serialize)]
struct Envelope<'a> {
    id: &'a str,
    r#type: &'static str,
    occurred_at: String,
    data: Data<'a>,
}

#[derive(Serialize)]
struct Data<'a> {
    instance: Instance<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    step: Option<Step<'a>>,
    /// Who caused the event: the decider, the canceller, or the initiator of a trigger; `null`
    /// for the engine itself (an overdue step).
    actor_id: Option<i64>,
    comment: Option<&'a str>,
}

#[derive(Serialize)]
struct Instance<'a> {
    id: i64,
    event: &'a str,
    entity_type: &'a str,
    entity_id: i64,
    status: &'a str,
    sequence: i64,
}

#[derive(Serialize)]
struct Step<'a> {
    id: i64,
    step_order: i32,
    name: &'a str,
    eligible_user_ids: Vec<i64>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::model::{
        CallbackEvent, CallbackKind, EntityId, EntityType, EventName, EventStep, InstanceId,
        InstanceStatus, StepId, UserId,
    };
    use chrono::{TimeZone, Utc};

    fn item(kind: CallbackKind, step: Option<EventStep>) -> OutboxItem {
        OutboxItem {
            id: 11,
            attempts: 1,
            event_id: "evt_abc".to_owned(),
            sequence: 3,
            event: CallbackEvent {
                kind,
                instance_id: InstanceId::new(7).unwrap(),
                event: EventName::new("booking.discount_requested").unwrap(),
                entity_type: EntityType::new("booking").unwrap(),
                entity_id: EntityId::new(2).unwrap(),
                status: InstanceStatus::InProgress,
                step,
                decided_by: Some(UserId::new(5).unwrap()),
                comment: None,
                at: Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap(),
            },
        }
    }

    #[test]
    fn a_step_event_carries_the_instance_the_step_and_its_eligible_users() {
        let step = EventStep {
            id: StepId::new(40).unwrap(),
            step_order: 2,
            name: "Finance".to_owned(),
            eligible_user_ids: vec![UserId::new(3).unwrap(), UserId::new(4).unwrap()],
        };
        let json: serde_json::Value = serde_json::from_slice(&envelope_json(&item(
            CallbackKind::StepAwaitingAction,
            Some(step),
        )))
        .unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "id": "evt_abc",
                "type": "step.awaiting_action",
                "occurred_at": "2026-01-02T03:04:05.000000Z",
                "data": {
                    "instance": {
                        "id": 7, "event": "booking.discount_requested", "entity_type": "booking",
                        "entity_id": 2, "status": "in_progress", "sequence": 3
                    },
                    "step": {"id": 40, "step_order": 2, "name": "Finance", "eligible_user_ids": [3, 4]},
                    "actor_id": 5,
                    "comment": null
                }
            })
        );
    }

    #[test]
    fn an_instance_event_has_no_step() {
        let json: serde_json::Value =
            serde_json::from_slice(&envelope_json(&item(CallbackKind::OnApproved, None))).unwrap();
        assert_eq!(json["type"], "instance.approved");
        assert!(json["data"].get("step").is_none());
    }
}
