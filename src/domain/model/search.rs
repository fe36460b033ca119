//! Finding instances (domain core, model): the filter a search takes and the page it returns.
//!
//! Every criterion is optional and they combine with AND. An entity id means nothing without its
//! entity type (booking 7 and unit 7 are different things), so the filter can't hold one alone:
//! [`InstanceFilter::new`] refuses it, naming `entity_id`.

use super::instance::Instance;
use super::status::InstanceStatus;
use super::values::{EntityId, EntityType, EventName, InstanceId, UserId};
use crate::domain::error::WorkflowError;

/// Every instance status, in lifecycle order (what a status filter may name).
pub const INSTANCE_STATUSES: [InstanceStatus; 5] = [
    InstanceStatus::Pending,
    InstanceStatus::InProgress,
    InstanceStatus::Approved,
    InstanceStatus::Rejected,
    InstanceStatus::Cancelled,
];

/// Instances about one kind of entity, or about one entity of that kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntityFilter {
    pub entity_type: EntityType,
    pub entity_id: Option<EntityId>,
}

/// What a search matches: instances meeting every criterion given (none given: all instances).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InstanceFilter {
    pub entity: Option<EntityFilter>,
    pub event: Option<EventName>,
    pub status: Option<InstanceStatus>,
    pub initiated_by: Option<UserId>,
}

impl InstanceFilter {
    /// A filter from its criteria. `Validation` (field `entity_id`) for an entity id without an
    /// entity type.
    pub fn new(
        entity_type: Option<EntityType>,
        entity_id: Option<EntityId>,
        event: Option<EventName>,
        status: Option<InstanceStatus>,
        initiated_by: Option<UserId>,
    ) -> Result<Self, WorkflowError> {
        let entity = match (entity_type, entity_id) {
            (Some(entity_type), entity_id) => Some(EntityFilter {
                entity_type,
                entity_id,
            }),
            (None, Some(_)) => {
                return Err(WorkflowError::validation(
                    "entity_id",
                    "can only be given together with entity_type",
                ));
            }
            (None, None) => None,
        };
        Ok(Self {
            entity,
            event,
            status,
            initiated_by,
        })
    }

    /// Whether `instance` meets every criterion (the in-memory store's search; PostgreSQL
    /// applies the same criteria in SQL).
    pub fn matches(&self, instance: &Instance) -> bool {
        let entity = self.entity.as_ref().is_none_or(|e| {
            e.entity_type == instance.entity_type
                && e.entity_id.is_none_or(|id| id == instance.entity_id)
        });
        entity
            && self.event.as_ref().is_none_or(|e| *e == instance.event)
            && self.status.is_none_or(|s| s == instance.status)
            && self.initiated_by.is_none_or(|u| u == instance.initiated_by)
    }
}

/// One page of a search, newest instance first. Each instance has its steps but no audit (an
/// empty `audit`): the trail is read one instance at a time. `next` is where the following
/// page starts (pass it as `after`), `None` on the last page.
#[derive(Debug, Clone, PartialEq)]
pub struct InstancePage {
    pub items: Vec<Instance>,
    pub next: Option<InstanceId>,
}
