//! The `EventFanOut` adapter that hands each round of outbox events to the webhooks: it creates
//! the round's deliveries (one per event and matching subscription, idempotently) in one write,
//! already claimed for their first try, and hands them to this process's webhook dispatcher.
//! It runs in the outbox dispatcher, after the changes that caused the events have committed,
//! never in their transactions, and before the `Callbacks` adapters, so that a failing one
//! (NATS in an outage) never holds back webhooks.

use std::sync::Arc;
use std::time::Duration;

use crate::domain::dispatcher::to_chrono;
use crate::domain::model::OutboxItem;
use crate::domain::ports::{Clock, EventFanOut};
use crate::domain::webhooks::dispatcher::{HandOff, HandedDeliveries};
use crate::domain::webhooks::model::FanOutEvent;
use crate::domain::webhooks::ports::WebhookStore;
use crate::outbound::envelope::envelope_json;

/// Turns events into webhook deliveries.
pub struct WebhookFanOut<W, C> {
    store: Arc<W>,
    clock: Arc<C>,
    /// The webhook dispatcher's lease: the created deliveries are its until then.
    lease: Duration,
    hand_off: HandOff,
}

impl<W, C> WebhookFanOut<W, C> {
    /// Fans out into `store`, handing the deliveries to the dispatcher behind `hand_off`, whose
    /// lease they get.
    pub fn new(store: Arc<W>, clock: Arc<C>, lease: Duration, hand_off: HandOff) -> Self {
        Self {
            store,
            clock,
            lease,
            hand_off,
        }
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
        let now = self.clock.now();
        let leased_until = now + to_chrono(self.lease);
        let created = self
            .store
            .fan_out(events, now, leased_until)
            .await
            .map_err(|e| format!("webhook fan-out failed: {e}"))?;
        if !created.is_empty() {
            let count = created.len();
            let handed = self.hand_off.hand(HandedDeliveries {
                deliveries: created,
                leased_until,
            });
            if !handed {
                // No dispatcher here to take them now: they are claimed when their lease ends.
                tracing::debug!(
                    deliveries = count,
                    "webhook deliveries not handed over; they will be claimed when their lease ends"
                );
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::model::Lease;
    use crate::domain::model::{
        CallbackEvent, CallbackKind, EntityId, EntityType, EventName, InstanceId, InstanceStatus,
    };
    use crate::domain::ports::MockClock;
    use crate::domain::webhooks::dispatcher::hand_off;
    use crate::domain::webhooks::model::{ClaimedDelivery, WebhookSecret, WebhookUrl};
    use crate::domain::webhooks::ports::MockWebhookStore;
    use chrono::{TimeZone, Utc};

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

    fn claimed(id: i64) -> ClaimedDelivery {
        ClaimedDelivery {
            lease: Lease { id, attempts: 1 },
            url: WebhookUrl::parse("https://hooks.example.com/in").unwrap(),
            secret: WebhookSecret::from_stored("whsec_AAAA".to_owned()),
            event_id: format!("evt_{id}"),
            body: "{}".to_owned(),
        }
    }

    const LEASE: Duration = Duration::from_secs(15);

    /// A round is one write, whatever its size, with each event's envelope, and what it created
    /// is handed to the dispatcher with the lease the store was given.
    #[tokio::test]
    async fn a_round_is_fanned_out_in_one_write_and_handed_to_the_dispatcher() {
        let mut store = MockWebhookStore::new();
        store
            .expect_fan_out()
            .withf(|events, now, until| {
                events
                    .iter()
                    .map(|e| e.event_id.as_str())
                    .collect::<Vec<_>>()
                    == ["evt_1", "evt_2"]
                    && events[1].kind == CallbackKind::OnRejected
                    && events[0].body.contains("\"id\":\"evt_1\"")
                    && *until - *now == chrono::Duration::seconds(15)
            })
            .times(1)
            .returning(|_, _, _| Box::pin(async { Ok(vec![claimed(1), claimed(2)]) }));
        let (hand_off, mut queue) = hand_off();
        let fan_out = WebhookFanOut::new(Arc::new(store), Arc::new(clock()), LEASE, hand_off);

        let items = [
            item("evt_1", CallbackKind::OnApproved),
            item("evt_2", CallbackKind::OnRejected),
        ];
        assert_eq!(fan_out.fan_out(&items).await, Ok(()));
        let handed = queue.try_next().expect("handed to the dispatcher");
        assert_eq!(handed.deliveries, vec![claimed(1), claimed(2)]);
        assert_eq!(
            handed.leased_until,
            Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 16).unwrap()
        );
        assert!(queue.try_next().is_none());
    }

    #[tokio::test]
    async fn nothing_created_hands_nothing_and_a_store_error_fails_the_round() {
        let mut store = MockWebhookStore::new();
        let mut calls = 0;
        store.expect_fan_out().times(2).returning(move |_, _, _| {
            calls += 1;
            let outcome = if calls == 1 {
                Ok(Vec::new())
            } else {
                Err(crate::domain::WorkflowError::Unavailable("down".to_owned()))
            };
            Box::pin(async move { outcome })
        });
        let (hand_off, mut queue) = hand_off();
        let fan_out = WebhookFanOut::new(Arc::new(store), Arc::new(clock()), LEASE, hand_off);
        let items = [item("evt_1", CallbackKind::OnApproved)];

        assert_eq!(fan_out.fan_out(&items).await, Ok(()));
        assert!(queue.try_next().is_none());
        assert!(fan_out.fan_out(&items).await.is_err());
    }

    /// With no dispatcher to take them, the deliveries stay created (and are claimed when their
    /// lease ends): the round itself succeeded.
    #[tokio::test]
    async fn a_hand_off_nobody_takes_does_not_fail_the_round() {
        let mut store = MockWebhookStore::new();
        store
            .expect_fan_out()
            .times(1)
            .returning(|_, _, _| Box::pin(async { Ok(vec![claimed(1)]) }));
        let (hand_off, queue) = hand_off();
        drop(queue);
        let fan_out = WebhookFanOut::new(Arc::new(store), Arc::new(clock()), LEASE, hand_off);
        let items = [item("evt_1", CallbackKind::OnApproved)];
        assert_eq!(fan_out.fan_out(&items).await, Ok(()));
    }
}
