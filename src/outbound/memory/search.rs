//! Driven adapter (outbound), in-memory store: finding instances, newest first. Instances are
//! kept by id, so a page walks the ids below the cursor downwards and stops at the limit, as
//! PostgreSQL's index range does; the criteria are the domain's own (`InstanceFilter::matches`).

use super::State;
use crate::domain::model::{Instance, InstanceFilter, InstanceId};

impl State {
    /// The newest instances matching `filter` with an id below `after`, at most `limit`, each
    /// with its steps and no audit.
    pub(super) fn search_instances(
        &self,
        filter: &InstanceFilter,
        limit: u32,
        after: Option<InstanceId>,
    ) -> Vec<Instance> {
        let below = match after {
            Some(after) => self.instances.range(..after),
            None => self.instances.range(..),
        };
        below
            .rev()
            .map(|(_, instance)| instance)
            .filter(|instance| filter.matches(instance))
            .take(limit as usize)
            .map(|instance| Instance {
                audit: Vec::new(),
                ..instance.clone()
            })
            .collect()
    }
}
