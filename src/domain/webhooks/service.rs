//! The webhook use cases, over the store's webhook half, the URL guard and the clock.

use std::sync::Arc;

use tokio::sync::Notify;

use super::model::{
    Delivery, DeliveryCounts, DeliveryId, DeliveryStatus, NewSubscription, Subscription,
    SubscriptionId, SubscriptionRequest, WebhookSecret,
};
use super::ports::{UrlGuard, WebhookStore, WebhookUseCases};
use crate::domain::WorkflowError;
use crate::domain::model::{Done, Once};
use crate::domain::ports::Clock;

/// Implements [`WebhookUseCases`].
pub struct WebhookService<W, G, C> {
    store: Arc<W>,
    guard: Arc<G>,
    clock: Arc<C>,
    /// Wakes the webhook dispatcher when a retry makes a delivery due.
    wake: Arc<Notify>,
}

impl<W, G, C> WebhookService<W, G, C> {
    /// The use cases over these adapters; `wake` is the webhook dispatcher's.
    pub fn new(store: Arc<W>, guard: Arc<G>, clock: Arc<C>, wake: Arc<Notify>) -> Self {
        Self {
            store,
            guard,
            clock,
            wake,
        }
    }
}

impl<W, G, C> WebhookUseCases for WebhookService<W, G, C>
where
    W: WebhookStore,
    G: UrlGuard,
    C: Clock,
{
    async fn create_subscription(
        &self,
        request: SubscriptionRequest,
        once: Option<Once<Subscription>>,
    ) -> Result<Done<Subscription>, WorkflowError> {
        self.guard
            .check(&request.url)
            .await
            .map_err(|reason| WorkflowError::validation("url", reason))?;
        let new = NewSubscription {
            url: request.url,
            event_types: request.event_types,
            secret: WebhookSecret::generate()?,
            created_at: self.clock.now(),
        };
        self.store.create_subscription(new, once).await
    }

    async fn subscriptions(&self) -> Result<Vec<Subscription>, WorkflowError> {
        self.store.subscriptions().await
    }

    async fn delete_subscription(&self, id: SubscriptionId) -> Result<(), WorkflowError> {
        self.store.delete_subscription(id).await
    }

    async fn deliveries(
        &self,
        subscription: SubscriptionId,
        status: Option<DeliveryStatus>,
    ) -> Result<Vec<Delivery>, WorkflowError> {
        self.store.deliveries(subscription, status).await
    }

    async fn retry_delivery(
        &self,
        id: DeliveryId,
        once: Option<Once<Delivery>>,
    ) -> Result<Done<Delivery>, WorkflowError> {
        let done = self
            .store
            .retry_delivery(id, self.clock.now(), once)
            .await?;
        self.wake.notify_one();
        Ok(done)
    }

    async fn delivery_counts(&self) -> Result<DeliveryCounts, WorkflowError> {
        self.store.delivery_counts().await
    }
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};

    use super::*;
    use crate::domain::ports::MockClock;
    use crate::domain::webhooks::model::{EventTypes, WebhookUrl};
    use crate::domain::webhooks::ports::{MockUrlGuard, MockWebhookStore};

    fn request() -> SubscriptionRequest {
        SubscriptionRequest {
            url: WebhookUrl::parse("https://hooks.example.com/in").unwrap(),
            event_types: EventTypes::parse(["instance.approved"]).unwrap(),
        }
    }

    fn clock() -> MockClock {
        let mut clock = MockClock::new();
        clock
            .expect_now()
            .return_const(Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap());
        clock
    }

    #[tokio::test]
    async fn a_refused_url_is_a_validation_error_and_stores_nothing() {
        let mut guard = MockUrlGuard::new();
        guard.expect_check().returning(|_| {
            Box::pin(async { Err("resolves to 10.0.0.1, a private address".into()) })
        });
        let mut store = MockWebhookStore::new();
        store.expect_create_subscription().never();
        let service = WebhookService::new(
            Arc::new(store),
            Arc::new(guard),
            Arc::new(clock()),
            Arc::default(),
        );
        let error = service
            .create_subscription(request(), None)
            .await
            .unwrap_err();
        assert_eq!(
            error,
            WorkflowError::validation("url", "resolves to 10.0.0.1, a private address")
        );
    }

    #[tokio::test]
    async fn a_subscription_gets_a_fresh_secret_and_the_clock_s_time() {
        let mut guard = MockUrlGuard::new();
        guard
            .expect_check()
            .returning(|_| Box::pin(async { Ok(()) }));
        let mut store = MockWebhookStore::new();
        store
            .expect_create_subscription()
            .times(1)
            .returning(|new, _| {
                assert!(new.secret.as_str().starts_with("whsec_"));
                assert_eq!(
                    new.created_at,
                    Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap()
                );
                let stored = Subscription {
                    id: SubscriptionId::new(1).unwrap(),
                    url: new.url,
                    event_types: new.event_types,
                    secret: new.secret,
                    created_at: new.created_at,
                };
                Box::pin(async move { Ok(Done::Fresh(stored)) })
            });
        let service = WebhookService::new(
            Arc::new(store),
            Arc::new(guard),
            Arc::new(clock()),
            Arc::default(),
        );
        let Done::Fresh(created) = service.create_subscription(request(), None).await.unwrap()
        else {
            panic!("not fresh");
        };
        assert_eq!(created.id.get(), 1);
    }
}
