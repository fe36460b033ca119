//! Callback adapters for the `Callbacks` port: a logging sink for `serve`, and (for tests only,
//! behind the `test-support` feature) a recording sink that observes deliveries and can simulate
//! a receiver that is down.

use crate::domain::model::OutboxItem;
use crate::domain::ports::Callbacks;

/// Writes each event to the log.
#[derive(Debug, Default)]
pub struct LogCallbacks;

impl Callbacks for LogCallbacks {
    async fn deliver(&self, item: &OutboxItem) -> Result<(), String> {
        let event = &item.event;
        tracing::info!(
            event_id = %item.event_id,
            r#type = event.kind.event_type(),
            sequence = item.sequence,
            instance_id = %event.instance_id,
            event = %event.event,
            entity_type = %event.entity_type,
            entity_id = %event.entity_id,
            status = %event.status,
            decided_by = ?event.decided_by.map(|u| u.get()),
            "workflow event"
        );
        Ok(())
    }
}

#[cfg(any(test, feature = "test-support"))]
pub use recording::RecordingCallbacks;

#[cfg(any(test, feature = "test-support"))]
mod recording {
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicU32, Ordering};

    use crate::domain::model::{CallbackEvent, CallbackKind, OutboxItem};
    use crate::domain::ports::Callbacks;

    /// Keeps every delivered event in memory; can be told to fail the next deliveries.
    #[derive(Debug, Default)]
    pub struct RecordingCallbacks {
        delivered: Mutex<Vec<OutboxItem>>,
        failures_left: AtomicU32,
    }

    impl RecordingCallbacks {
        /// A sink that accepts everything.
        pub fn new() -> Self {
            Self::default()
        }

        /// Makes the next `n` deliveries fail, as a receiver that is down would.
        pub fn fail_next(&self, n: u32) {
            self.failures_left.store(n, Ordering::SeqCst);
        }

        /// The events delivered so far, in order.
        pub fn delivered(&self) -> Vec<CallbackEvent> {
            self.items().into_iter().map(|item| item.event).collect()
        }

        /// The outcomes (`instance.*` events) delivered so far, in order.
        pub fn outcomes(&self) -> Vec<CallbackEvent> {
            self.delivered()
                .into_iter()
                .filter(|e| {
                    !matches!(
                        e.kind,
                        CallbackKind::StepAwaitingAction | CallbackKind::StepOverdue
                    )
                })
                .collect()
        }

        /// The outbox items delivered so far (with their ids and sequence), in order.
        pub fn items(&self) -> Vec<OutboxItem> {
            self.delivered
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone()
        }
    }

    impl Callbacks for RecordingCallbacks {
        async fn deliver(&self, item: &OutboxItem) -> Result<(), String> {
            let failing = self
                .failures_left
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok();
            if failing {
                return Err("receiver unavailable".to_owned());
            }
            self.delivered
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(item.clone());
            Ok(())
        }
    }
}
