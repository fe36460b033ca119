//! Driven adapter (outbound), in-memory store: the callback outbox. Events are queued in the
//! same locked update as the decision that produced them, and claimed with a lease so that an
//! event nobody reports on comes due again (at-least-once, as with PostgreSQL).

use chrono::{DateTime, Utc};

use super::State;
use crate::domain::model::{CallbackEvent, OutboxItem, StoreLoad};

pub(super) struct OutboxRow {
    item: OutboxItem,
    due_at: DateTime<Utc>,
    delivered_at: Option<DateTime<Utc>>,
    last_error: Option<String>,
}

impl State {
    pub(super) fn enqueue_callbacks(&mut self, events: Vec<CallbackEvent>) {
        for event in events {
            self.last_outbox_id += 1;
            let id = self.last_outbox_id;
            let due_at = event.at;
            self.outbox.insert(
                id,
                OutboxRow {
                    item: OutboxItem {
                        id,
                        attempts: 0,
                        event,
                    },
                    due_at,
                    delivered_at: None,
                    last_error: None,
                },
            );
        }
    }

    pub(super) fn claim_callbacks(
        &mut self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: u32,
    ) -> Vec<OutboxItem> {
        // Oldest due first, as PostgreSQL claims them.
        let mut due: Vec<(DateTime<Utc>, i64)> = self
            .outbox
            .values()
            .filter(|row| row.delivered_at.is_none() && row.due_at <= now)
            .map(|row| (row.due_at, row.item.id))
            .collect();
        due.sort_unstable();
        due.truncate(limit as usize);
        let mut claimed = Vec::with_capacity(due.len());
        for (_, id) in due {
            if let Some(row) = self.outbox.get_mut(&id) {
                row.due_at = lease_until;
                row.item.attempts += 1;
                claimed.push(row.item.clone());
            }
        }
        claimed
    }

    /// The undelivered events: how many, and the oldest one's time. No pool.
    pub(super) fn outbox_load(&self) -> StoreLoad {
        let pending = self
            .outbox
            .values()
            .filter(|row| row.delivered_at.is_none());
        StoreLoad {
            outbox_backlog: pending.clone().count() as u64,
            oldest_undelivered_at: pending.map(|row| row.item.event.at).min(),
            pool: None,
        }
    }

    pub(super) fn mark_callback_delivered(&mut self, id: i64, at: DateTime<Utc>) {
        if let Some(row) = self.outbox.get_mut(&id) {
            row.delivered_at = Some(at);
            row.last_error = None;
        }
    }

    pub(super) fn mark_callback_failed(&mut self, id: i64, error: String, retry_at: DateTime<Utc>) {
        if let Some(row) = self.outbox.get_mut(&id) {
            row.due_at = retry_at;
            row.last_error = Some(error);
        }
    }
}
