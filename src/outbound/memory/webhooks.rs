//! Driven adapter, in memory: webhook subscriptions and deliveries (the `WebhookStore` port),
//! under the store's one mutex, with the same claims, leases and fencing as PostgreSQL.

use std::collections::{BTreeMap, HashSet};

use chrono::{DateTime, Utc};

use super::MemoryStore;
use crate::domain::WorkflowError;
use crate::domain::model::{Done, Lease, Once};
use crate::domain::webhooks::model::{
    ClaimedDelivery, Delivery, DeliveryCounts, DeliveryId, DeliveryMark, DeliveryStatus,
    FanOutEvent, MarkOutcome, NewSubscription, Subscription, SubscriptionId,
};
use crate::domain::webhooks::ports::WebhookStore;

/// The webhook half of the in-memory state.
#[derive(Default)]
pub(super) struct Hooks {
    subscriptions: BTreeMap<SubscriptionId, Subscription>,
    deliveries: BTreeMap<DeliveryId, Row>,
    /// (subscription, event id) of every delivery: one delivery per event and subscription.
    delivered_events: HashSet<(SubscriptionId, String)>,
    last_subscription_id: i64,
    last_delivery_id: i64,
}

struct Row {
    delivery: Delivery,
    body: String,
    /// While a dispatcher holds it.
    leased_until: Option<DateTime<Utc>>,
}

impl Row {
    fn leased_at(&self, now: DateTime<Utc>) -> bool {
        self.leased_until.is_some_and(|until| until > now)
    }
}

impl Hooks {
    fn subscription_exists(&self, id: SubscriptionId) -> Result<(), WorkflowError> {
        if self.subscriptions.contains_key(&id) {
            Ok(())
        } else {
            Err(WorkflowError::not_found(format!("subscription {id}")))
        }
    }

    /// One event's deliveries, one per matching subscription that has none of it yet, each
    /// claimed for its first try until `lease_until`.
    fn fan_out(
        &mut self,
        event: FanOutEvent,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        created: &mut Vec<ClaimedDelivery>,
    ) -> Result<(), WorkflowError> {
        let hooks = self;
        let matching: Vec<&Subscription> = hooks
            .subscriptions
            .values()
            .filter(|s| s.event_types.contains(event.kind))
            .collect();
        for subscription in matching {
            if !hooks
                .delivered_events
                .insert((subscription.id, event.event_id.clone()))
            {
                continue;
            }
            hooks.last_delivery_id += 1;
            let id = DeliveryId::new(hooks.last_delivery_id)?;
            hooks.deliveries.insert(
                id,
                Row {
                    delivery: Delivery {
                        id,
                        subscription_id: subscription.id,
                        event_id: event.event_id.clone(),
                        event_type: event.kind,
                        status: DeliveryStatus::Pending,
                        attempts: 1,
                        last_error: None,
                        last_status_code: None,
                        next_attempt_at: Some(now),
                        delivered_at: None,
                        created_at: now,
                    },
                    body: event.body.clone(),
                    leased_until: Some(lease_until),
                },
            );
            created.push(ClaimedDelivery {
                lease: Lease {
                    id: id.get(),
                    attempts: 1,
                },
                url: subscription.url.clone(),
                secret: subscription.secret.clone(),
                event_id: event.event_id.clone(),
                body: event.body.clone(),
            });
        }
        Ok(())
    }

    fn retry(&mut self, id: DeliveryId, now: DateTime<Utc>) -> Result<Delivery, WorkflowError> {
        let row = self
            .deliveries
            .get_mut(&id)
            .ok_or_else(|| WorkflowError::not_found(format!("delivery {id}")))?;
        let status = row.delivery.status;
        if !status.is_retryable() {
            return Err(WorkflowError::DeliveryNotRetryable {
                delivery: id.get(),
                reason: format!("is {status}"),
            });
        }
        if row.leased_at(now) {
            return Err(WorkflowError::DeliveryNotRetryable {
                delivery: id.get(),
                reason: "is being sent right now".to_owned(),
            });
        }
        row.delivery.status = DeliveryStatus::Pending;
        row.delivery.next_attempt_at = Some(now);
        row.leased_until = None;
        Ok(row.delivery.clone())
    }
}

impl WebhookStore for MemoryStore {
    async fn create_subscription(
        &self,
        new: NewSubscription,
        once: Option<Once<Subscription>>,
    ) -> Result<Done<Subscription>, WorkflowError> {
        self.lock().once(once, |state| {
            let hooks = &mut state.hooks;
            hooks.last_subscription_id += 1;
            let subscription = Subscription {
                id: SubscriptionId::new(hooks.last_subscription_id)?,
                url: new.url,
                event_types: new.event_types,
                secret: new.secret,
                created_at: new.created_at,
            };
            hooks
                .subscriptions
                .insert(subscription.id, subscription.clone());
            Ok(subscription)
        })
    }

    async fn subscriptions(&self) -> Result<Vec<Subscription>, WorkflowError> {
        Ok(self.lock().hooks.subscriptions.values().cloned().collect())
    }

    async fn delete_subscription(&self, id: SubscriptionId) -> Result<(), WorkflowError> {
        let mut state = self.lock();
        let hooks = &mut state.hooks;
        hooks.subscription_exists(id)?;
        hooks.subscriptions.remove(&id);
        hooks
            .deliveries
            .retain(|_, row| row.delivery.subscription_id != id);
        hooks.delivered_events.retain(|(sub, _)| *sub != id);
        Ok(())
    }

    async fn deliveries(
        &self,
        subscription: SubscriptionId,
        status: Option<DeliveryStatus>,
    ) -> Result<Vec<Delivery>, WorkflowError> {
        let state = self.lock();
        state.hooks.subscription_exists(subscription)?;
        Ok(state
            .hooks
            .deliveries
            .values()
            .rev()
            .map(|row| &row.delivery)
            .filter(|d| d.subscription_id == subscription)
            .filter(|d| status.is_none_or(|s| d.status == s))
            .cloned()
            .collect())
    }

    async fn retry_delivery(
        &self,
        id: DeliveryId,
        now: DateTime<Utc>,
        once: Option<Once<Delivery>>,
    ) -> Result<Done<Delivery>, WorkflowError> {
        self.lock().once(once, |state| state.hooks.retry(id, now))
    }

    async fn fan_out(
        &self,
        events: Vec<FanOutEvent>,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> Result<Vec<ClaimedDelivery>, WorkflowError> {
        let mut state = self.lock();
        let mut created = Vec::new();
        for event in events {
            state.hooks.fan_out(event, now, lease_until, &mut created)?;
        }
        Ok(created)
    }

    async fn claim_deliveries(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<ClaimedDelivery>, WorkflowError> {
        let mut state = self.lock();
        let hooks = &mut state.hooks;
        let mut due: Vec<(DateTime<Utc>, DeliveryId)> = hooks
            .deliveries
            .values()
            .filter(|row| {
                matches!(
                    row.delivery.status,
                    DeliveryStatus::Pending | DeliveryStatus::Failed
                ) && !row.leased_at(now)
            })
            .filter_map(|row| {
                let at = row.delivery.next_attempt_at?;
                (at <= now).then_some((at, row.delivery.id))
            })
            .collect();
        due.sort_unstable();
        due.truncate(limit as usize);
        let mut claimed = Vec::with_capacity(due.len());
        for (_, id) in due {
            let Some(row) = hooks.deliveries.get_mut(&id) else {
                continue;
            };
            let Some(subscription) = hooks.subscriptions.get(&row.delivery.subscription_id) else {
                continue;
            };
            row.delivery.attempts += 1;
            row.leased_until = Some(lease_until);
            claimed.push(ClaimedDelivery {
                lease: Lease {
                    id: id.get(),
                    attempts: row.delivery.attempts,
                },
                url: subscription.url.clone(),
                secret: subscription.secret.clone(),
                event_id: row.delivery.event_id.clone(),
                body: row.body.clone(),
            });
        }
        Ok(claimed)
    }

    async fn mark_deliveries(
        &self,
        marks: Vec<DeliveryMark>,
        now: DateTime<Utc>,
    ) -> Result<u64, WorkflowError> {
        let mut state = self.lock();
        let mut marked = 0;
        for mark in marks {
            let Ok(id) = DeliveryId::new(mark.lease.id) else {
                continue;
            };
            let Some(row) = state.hooks.deliveries.get_mut(&id) else {
                continue;
            };
            // The fence: still this claim's, and its lease not over.
            if row.delivery.attempts != mark.lease.attempts || !row.leased_at(now) {
                continue;
            }
            let d = &mut row.delivery;
            match mark.outcome {
                MarkOutcome::Delivered { status } => {
                    d.status = DeliveryStatus::Delivered;
                    d.last_status_code = Some(status);
                    d.last_error = None;
                    d.delivered_at = Some(now);
                    d.next_attempt_at = None;
                }
                MarkOutcome::Failed {
                    status,
                    error,
                    retry_at,
                } => {
                    d.status = if retry_at.is_some() {
                        DeliveryStatus::Failed
                    } else {
                        DeliveryStatus::Dead
                    };
                    d.last_status_code = status;
                    d.last_error = Some(error);
                    d.next_attempt_at = retry_at;
                }
            }
            row.leased_until = None;
            marked += 1;
        }
        Ok(marked)
    }

    async fn delivery_counts(&self) -> Result<DeliveryCounts, WorkflowError> {
        let state = self.lock();
        let mut counts = DeliveryCounts::default();
        for row in state.hooks.deliveries.values() {
            match row.delivery.status {
                DeliveryStatus::Pending => counts.pending += 1,
                DeliveryStatus::Failed => counts.failed += 1,
                DeliveryStatus::Delivered => counts.delivered += 1,
                DeliveryStatus::Dead => counts.dead += 1,
            }
        }
        Ok(counts)
    }
}
