//! The `Callbacks` adapter that hands each outbox event to the webhooks: after the adapter it
//! wraps has taken the event, it creates the event's deliveries (one per matching
//! subscription, idempotently) and wakes the webhook dispatcher. It runs in the outbox
//! dispatcher, after the change that caused the event has committed, never in its transaction.

use std::sync::Arc;

use tokio::sync::Notify;

use crate::domain::model::OutboxItem;
use crate::domain::ports::{Callbacks, Clock};
use crate::domain::webhooks::model::FanOutEvent;
use crate::domain::webhooks::ports::WebhookStore;
use crate::outbound::envelope::envelope_json;

/// Delivers to `inner`, then fans the event out to the webhook subscriptions.
pub struct WebhookFanOut<K, W, C> {
    inner: Arc<K>,
    store: Arc<W>,
    clock: Arc<C>,
    wake: Arc<Notify>,
}

impl<K, W, C> WebhookFanOut<K, W, C> {
    /// Fans out after `inner`; `wake` is the webhook dispatcher's.
    pub fn new(inner: Arc<K>, store: Arc<W>, clock: Arc<C>, wake: Arc<Notify>) -> Self {
        Self {
            inner,
            store,
            clock,
            wake,
        }
    }
}

impl<K, W, C> Callbacks for WebhookFanOut<K, W, C>
where
    K: Callbacks,
    W: WebhookStore,
    C: Clock,
{
    async fn deliver(&self, item: &OutboxItem) -> Result<(), String> {
        self.inner.deliver(item).await?;
        let body = String::from_utf8(envelope_json(item))
            .map_err(|e| format!("the event's envelope is not UTF-8: {e}"))?;
        let event = FanOutEvent {
            event_id: item.event_id.clone(),
            kind: item.event.kind,
            body,
        };
        let created = self
            .store
            .fan_out(event, self.clock.now())
            .await
            .map_err(|e| format!("webhook fan-out failed: {e}"))?;
        if created > 0 {
            self.wake.notify_one();
        }
        Ok(())
    }
}
