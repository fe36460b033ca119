//! The `EventFanOut` adapter that hands each round of outbox events to the webhooks: it creates
//! the round's deliveries (one per event and matching subscription, idempotently) in one write,
//! and wakes the webhook dispatcher. It runs in the outbox dispatcher, after the changes that
//! caused the events have committed, never in their transactions, and before the `Callbacks`
//! adapters, so that a failing one (NATS in an outage) never holds back webhooks.

use std::sync::Arc;

use tokio::sync::Notify;

use crate::domain::model::OutboxItem;
use crate::domain::ports::{Clock, EventFanOut};
use crate::domain::webhooks::model::FanOutEvent;
use crate::domain::webhooks::ports::WebhookStore;
use crate::outbound::envelope::envelope_json;

/// Turns events into webhook deliveries.
pub struct WebhookFanOut<W, C> {
    store: Arc<W>,
    clock: Arc<C>,
    wake: Arc<Notify>,
}

impl<W, C> WebhookFanOut<W, C> {
    /// Fans out into `store`; `wake` is the webhook dispatcher's.
    pub fn new(store: Arc<W>, clock: Arc<C>, wake: Arc<Notify>) -> Self {
        Self { store, clock, wake }
    }
}

impl<W, C> EventFanOut for WebhookFanOut<W, C>
where
    W: WebhookStore,
    C: Clock,
{
    async fn fan_out(&self, items: &[OutboxItem]) -> Result<(), String> {
        let events = items
            .iter()
            .map(|item| {
                Ok(FanOutEvent {
                    event_id: item.event_id.clone(),
                    kind: item.event.kind,
                    body: String::from_utf8(envelope_json(item))
                        .map_err(|e| format!("the event's envelope is not UTF-8: {e}"))?,
                })
            })
            .collect::<Result<Vec<_>, String>>()?;
        let created = self
            .store
            .fan_out(events, self.clock.now())
            .await
            .map_err(|e| format!("webhook fan-out failed: {e}"))?;
        if created > 0 {
            self.wake.notify_one();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::model::{
        CallbackEvent, CallbackKind, EntityId, EntityType, EventName, InstanceId, InstanceStatus,
    };
    use crate::domain::ports::MockClock;
    use crate::domain::webhooks::ports::MockWebhookStore;
    use chrono::{TimeZone, Utc};
    use futures_util::FutureExt;

    fn item(id: &str, kind: CallbackKind) -> OutboxItem {
        OutboxItem {
            id: 1,
            attempts: 1,
            event_id: id.to_owned(),
            sequence: 1,
            event: CallbackEvent {
                kind,
                instance_id: InstanceId::new(7).unwrap(),
                event: EventName::new("unit.price_update_requested").unwrap(),
                entity_type: EntityType::new("unit").unwrap(),
                entity_id: EntityId::new(3).unwrap(),
                status: InstanceStatus::Approved,
                step: None,
                decided_by: None,
                comment: None,
                at: Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap(),
            },
        }
    }

    fn clock() -> MockClock {
        let mut clock = MockClock::new();
        clock
            .expect_now()
            .return_const(Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 1).unwrap());
        clock
    }

    /// A round is one write, whatever its size, with each event's envelope.
    #[tokio::test]
    async fn a_round_is_fanned_out_in_one_write_and_wakes_the_webhook_dispatcher() {
        let mut store = MockWebhookStore::new();
        store
            .expect_fan_out()
            .withf(|events, _| {
                events
                    .iter()
                    .map(|e| e.event_id.as_str())
                    .collect::<Vec<_>>()
                    == ["evt_1", "evt_2"]
                    && events[1].kind == CallbackKind::OnRejected
                    && events[0].body.contains("\"id\":\"evt_1\"")
            })
            .times(1)
            .returning(|_, _| Box::pin(async { Ok(2) }));
        let wake = Arc::new(Notify::new());
        let fan_out = WebhookFanOut::new(Arc::new(store), Arc::new(clock()), Arc::clone(&wake));

        let items = [
            item("evt_1", CallbackKind::OnApproved),
            item("evt_2", CallbackKind::OnRejected),
        ];
        assert_eq!(fan_out.fan_out(&items).await, Ok(()));
        assert!(wake.notified().now_or_never().is_some());
    }

    #[tokio::test]
    async fn nothing_created_wakes_nobody_and_a_store_error_fails_the_round() {
        let mut store = MockWebhookStore::new();
        let mut calls = 0;
        store.expect_fan_out().times(2).returning(move |_, _| {
            calls += 1;
            let outcome = if calls == 1 {
                Ok(0)
            } else {
                Err(crate::domain::WorkflowError::Unavailable("down".to_owned()))
            };
            Box::pin(async move { outcome })
        });
        let wake = Arc::new(Notify::new());
        let fan_out = WebhookFanOut::new(Arc::new(store), Arc::new(clock()), Arc::clone(&wake));
        let items = [item("evt_1", CallbackKind::OnApproved)];

        assert_eq!(fan_out.fan_out(&items).await, Ok(()));
        assert!(wake.notified().now_or_never().is_none());
        assert!(fan_out.fan_out(&items).await.is_err());
    }
}
