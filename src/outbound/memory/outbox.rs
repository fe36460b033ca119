//! Driven adapter (outbound), in-memory store: the callback outbox. Events are queued in the
//! same locked update as the decision that produced them, and claimed with a lease so that an
//! event nobody reports on comes due again (at-least-once, as with PostgreSQL).

use chrono::{DateTime, Utc};

use super::State;
use crate::domain::model::{CallbackEvent, FailedDelivery, Lease, OutboxItem, StoreLoad};

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
            let sequence = self.last_sequence.entry(event.instance_id).or_default();
            *sequence += 1;
            let sequence = *sequence;
            self.outbox.insert(
                id,
                OutboxRow {
                    item: OutboxItem {
                        id,
                        attempts: 0,
                        event_id: new_event_id(id),
                        sequence,
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
        due_since: Option<DateTime<Utc>>,
    ) -> Vec<OutboxItem> {
        // Oldest due first, as PostgreSQL claims them.
        let mut due: Vec<(DateTime<Utc>, i64)> = self
            .outbox
            .values()
            .filter(|row| {
                row.delivered_at.is_none()
                    && row.due_at <= now
                    && due_since.is_none_or(|since| row.due_at >= since)
            })
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

    /// The row `lease` names, if the lease still holds at `now` (see the port's fencing).
    fn leased(&mut self, lease: Lease, now: DateTime<Utc>) -> Option<&mut OutboxRow> {
        self.outbox.get_mut(&lease.id).filter(|row| {
            row.item.attempts == lease.attempts && row.delivered_at.is_none() && row.due_at > now
        })
    }

    pub(super) fn mark_callbacks_delivered(&mut self, leases: &[Lease], now: DateTime<Utc>) -> u64 {
        let mut marked = 0;
        for lease in leases {
            if let Some(row) = self.leased(*lease, now) {
                row.delivered_at = Some(now);
                row.last_error = None;
                marked += 1;
            }
        }
        marked
    }

    pub(super) fn mark_callbacks_failed(
        &mut self,
        failures: Vec<FailedDelivery>,
        now: DateTime<Utc>,
    ) -> u64 {
        let mut marked = 0;
        for failure in failures {
            if let Some(row) = self.leased(failure.lease, now) {
                row.due_at = failure.retry_at;
                row.last_error = Some(failure.error);
                marked += 1;
            }
        }
        marked
    }
}

/// A new public event id: `evt_` and 32 hex digits from the operating system's CSPRNG, as
/// PostgreSQL's `gen_random_uuid` gives. Should the CSPRNG fail, the row id keeps it unique in
/// this process, which is all an in-memory store lives for.
fn new_event_id(id: i64) -> String {
    let mut bytes = [0u8; 16];
    if getrandom::fill(&mut bytes).is_err() {
        return format!("evt_{id:032x}");
    }
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("evt_{hex}")
}
