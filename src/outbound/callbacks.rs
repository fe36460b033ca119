//! Callback adapters for the `Callbacks` port: the adapters `serve` plugs, as configured
//! ([`Adapters`]: the log always, NATS JetStream when configured), the logging sink, and (for
//! tests only, behind the `test-support` feature) a recording sink that observes deliveries and
//! can simulate a receiver that is down.

use crate::domain::model::{OutboxItem, ReadinessCheck};
use crate::domain::ports::Callbacks;
use crate::outbound::nats::NatsCallbacks;

/// Every adapter events go to, plugged by configuration: the log always, NATS JetStream when
/// `NATS_URL` is set. Another external adapter is one more `Option` field, delivered to and
/// checked like `nats`.
///
/// The port reports one result per event, so when any adapter fails the event is handed over
/// again, later, to every adapter, including those that already took it. That is safe because
/// each is idempotent on the event id: the log writes the line again, and JetStream drops the
/// second copy by its `Nats-Msg-Id`.
#[derive(Default)]
pub struct Adapters {
    pub log: LogCallbacks,
    pub nats: Option<NatsCallbacks>,
}

impl Adapters {
    /// The log alone.
    pub fn new() -> Self {
        Self::default()
    }

    /// Also publishes to NATS JetStream.
    pub fn with_nats(mut self, nats: NatsCallbacks) -> Self {
        self.nats = Some(nats);
        self
    }
}

impl Callbacks for Adapters {
    async fn deliver(&self, item: &OutboxItem) -> Result<(), String> {
        self.log.deliver(item).await?;
        if let Some(nats) = &self.nats {
            nats.deliver(item).await?;
        }
        Ok(())
    }

    async fn ready(&self) -> Vec<ReadinessCheck> {
        let mut checks = self.log.ready().await;
        if let Some(nats) = &self.nats {
            checks.extend(nats.ready().await);
        }
        checks
    }
}

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
