//! The `EventFanOut` adapter that hands each round of outbox events to the webhooks: it turns
//! each event into its envelope and has the webhook dispatcher send the first tries to every
//! matching subscription and record them, in one write for the round. It runs in the outbox
//! dispatcher's round, after the changes that caused the events have committed, never in their
//! transactions, and beside the `Callbacks` adapters, so that a failing one (NATS in an outage)
//! never holds back webhooks.

use chrono::{DateTime, Utc};

use crate::domain::model::OutboxItem;
use crate::domain::ports::{Clock, EventFanOut};
use crate::domain::webhooks::dispatcher::WebhookDispatcher;
use crate::domain::webhooks::model::FanOutEvent;
use crate::domain::webhooks::ports::{WebhookSender, WebhookStore};
use crate::outbound::envelope::envelope_json;

/// Turns events into webhook deliveries.
pub struct WebhookFanOut<W, S, C> {
    /// `Err` with why when this process can't send webhooks: its rounds then fail, and their
    /// events wait in the outbox for a process that can.
    dispatcher: Result<WebhookDispatcher<W, S, C>, String>,
}

impl<W, S, C> WebhookFanOut<W, S, C> {
    /// Fans out through `dispatcher`, or refuses every round with the reason it can't.
    pub fn new(dispatcher: Result<WebhookDispatcher<W, S, C>, String>) -> Self {
        Self { dispatcher }
    }
}

impl<W, S, C> EventFanOut for WebhookFanOut<W, S, C>
where
    W: WebhookStore,
    S: WebhookSender,
    C: Clock,
{
    async fn fan_out(&self, items: &[OutboxItem], held_until: DateTime<Utc>) -> Result<(), String> {
        let dispatcher = self
            .dispatcher
            .as_ref()
            .map_err(|reason| format!("this process can't send webhooks: {reason}"))?;
        let events = items
            .iter()
            .map(|item| {
                Ok(FanOutEvent {
                    event_id: item.event_id.clone(),
                    kind: item.event.kind,
                    body: String::from_utf8(envelope_json(item))
                        .map_err(|e| format!("the event's envelope is not UTF-8: {e}"))?,
                    outbox: item.lease(),
                })
            })
            .collect::<Result<Vec<_>, String>>()?;
        dispatcher
            .send_first_tries(events, held_until)
            .await
            .map(|_| ())
            .map_err(|e| format!("webhook fan-out failed: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::domain::model::{
        CallbackEvent, CallbackKind, EntityId, EntityType, EventName, InstanceId, InstanceStatus,
        Lease,
    };
    use crate::domain::ports::MockClock;
    use crate::domain::webhooks::dispatcher::WebhookDispatchConfig;
    use crate::domain::webhooks::model::{
        EventTypes, SendOutcome, Subscription, SubscriptionId, WebhookSecret, WebhookUrl,
    };
    use crate::domain::webhooks::ports::{MockWebhookSender, MockWebhookStore};
    use chrono::TimeZone;

    fn item(id: i64, event_id: &str, kind: CallbackKind) -> OutboxItem {
        OutboxItem {
            id,
            attempts: 1,
            event_id: event_id.to_owned(),
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

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 1).unwrap()
    }

    fn fan_out(
        store: MockWebhookStore,
        sender: MockWebhookSender,
    ) -> WebhookFanOut<MockWebhookStore, MockWebhookSender, MockClock> {
        let mut clock = MockClock::new();
        clock.expect_now().return_const(now());
        WebhookFanOut::new(Ok(WebhookDispatcher::new(
            Arc::new(store),
            Arc::new(sender),
            Arc::new(clock),
            WebhookDispatchConfig::default(),
        )))
    }

    fn held_until() -> DateTime<Utc> {
        now() + chrono::Duration::seconds(15)
    }

    /// Each event goes out as its envelope, and its first try is recorded under the outbox
    /// claim that carries it.
    #[tokio::test]
    async fn a_round_goes_out_as_envelopes_recorded_under_the_outbox_claims() {
        let mut store = MockWebhookStore::new();
        store.expect_subscriptions().returning(|| {
            Box::pin(async {
                Ok(vec![Subscription {
                    id: SubscriptionId::new(4).unwrap(),
                    url: WebhookUrl::parse("https://hooks.example.com/in").unwrap(),
                    event_types: EventTypes::parse(["instance.approved", "instance.rejected"])
                        .unwrap(),
                    secret: WebhookSecret::from_stored("whsec_AAAA".to_owned()),
                    created_at: now(),
                }])
            })
        });
        store
            .expect_record_first_tries()
            .times(1)
            .returning(|mut tries, _| {
                tries.sort_by_key(|t| t.outbox.id);
                assert_eq!(tries.len(), 2);
                assert_eq!(tries[0].outbox, Lease { id: 1, attempts: 1 });
                assert_eq!(tries[1].outbox, Lease { id: 2, attempts: 1 });
                assert_eq!(tries[1].kind, CallbackKind::OnRejected);
                let body: serde_json::Value = serde_json::from_str(&tries[1].body).unwrap();
                assert_eq!(body["id"], "evt_2");
                assert_eq!(body["type"], "instance.rejected");
                Box::pin(async { Ok(2) })
            });
        let mut sender = MockWebhookSender::new();
        sender.expect_send().times(2).returning(|message, _| {
            assert!(
                message
                    .body
                    .contains(&format!("\"id\":\"{}\"", message.event_id))
            );
            Box::pin(async { SendOutcome::Delivered { status: 204 } })
        });
        let items = [
            item(1, "evt_1", CallbackKind::OnApproved),
            item(2, "evt_2", CallbackKind::OnRejected),
        ];
        assert_eq!(
            fan_out(store, sender).fan_out(&items, held_until()).await,
            Ok(())
        );
    }

    /// A store error fails the round, and so does a process that can't send webhooks, with why.
    #[tokio::test]
    async fn a_store_error_or_no_sender_fails_the_round() {
        let mut store = MockWebhookStore::new();
        store.expect_subscriptions().times(1).returning(|| {
            Box::pin(async { Err(crate::domain::WorkflowError::Unavailable("down".to_owned())) })
        });
        let items = [item(1, "evt_1", CallbackKind::OnApproved)];
        let failed = fan_out(store, MockWebhookSender::new())
            .fan_out(&items, held_until())
            .await;
        assert!(failed.is_err_and(|e| e.contains("down")));

        let unable: WebhookFanOut<MockWebhookStore, MockWebhookSender, MockClock> =
            WebhookFanOut::new(Err("no TLS".to_owned()));
        let refused = unable.fan_out(&items, held_until()).await;
        assert!(refused.is_err_and(|e| e.contains("no TLS")));
    }
}
