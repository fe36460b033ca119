//! Webhook ports: the driving port the HTTP adapter calls, and the driven ports the core needs
//! (the store's webhook half, the sender, the URL guard). Store methods report trouble as
//! `Unavailable` or `Internal`, like the workflow's; other errors are listed on each method.

use std::future::Future;

use chrono::{DateTime, Utc};

use super::model::{
    ClaimedDelivery, Delivery, DeliveryCounts, DeliveryId, DeliveryMark, DeliveryStatus,
    FanOutEvent, NewSubscription, SendOutcome, Subscription, SubscriptionId, SubscriptionRequest,
    WebhookUrl,
};
use crate::domain::WorkflowError;
use crate::domain::model::{Done, Once};

/// The webhook use cases: the driving port of the subscription endpoints.
#[cfg_attr(test, mockall::automock)]
pub trait WebhookUseCases: Send + Sync + 'static {
    /// Subscribes `request.url` to `request.event_types` with a new secret, returned only
    /// here. `Validation` (field `url`) if the URL's host resolves to an address the guard
    /// refuses. Idempotent with `once`.
    fn create_subscription(
        &self,
        request: SubscriptionRequest,
        once: Option<Once<Subscription>>,
    ) -> impl Future<Output = Result<Done<Subscription>, WorkflowError>> + Send;

    /// Every subscription, by id.
    fn subscriptions(
        &self,
    ) -> impl Future<Output = Result<Vec<Subscription>, WorkflowError>> + Send;

    /// Removes a subscription with its deliveries. `NotFound`.
    fn delete_subscription(
        &self,
        id: SubscriptionId,
    ) -> impl Future<Output = Result<(), WorkflowError>> + Send;

    /// A subscription's deliveries (in `status` when given), newest first. `NotFound`
    /// (subscription).
    fn deliveries(
        &self,
        subscription: SubscriptionId,
        status: Option<DeliveryStatus>,
    ) -> impl Future<Output = Result<Vec<Delivery>, WorkflowError>> + Send;

    /// Re-queues a failed or dead delivery to be sent now. `NotFound`; `DeliveryNotRetryable`
    /// (pending, delivered, or being sent right now). Idempotent with `once`.
    fn retry_delivery(
        &self,
        id: DeliveryId,
        once: Option<Once<Delivery>>,
    ) -> impl Future<Output = Result<Done<Delivery>, WorkflowError>> + Send;

    /// How many deliveries are in each status.
    fn delivery_counts(&self)
    -> impl Future<Output = Result<DeliveryCounts, WorkflowError>> + Send;
}

/// The store's webhook half: subscriptions and their deliveries. Writes that take `once` keep
/// its answer with the key in their own transaction, as the workflow's do.
#[cfg_attr(test, mockall::automock)]
pub trait WebhookStore: Send + Sync + 'static {
    /// Stores a new subscription and returns it with its id.
    fn create_subscription(
        &self,
        subscription: NewSubscription,
        once: Option<Once<Subscription>>,
    ) -> impl Future<Output = Result<Done<Subscription>, WorkflowError>> + Send;

    /// Every subscription, by id.
    fn subscriptions(
        &self,
    ) -> impl Future<Output = Result<Vec<Subscription>, WorkflowError>> + Send;

    /// Removes the subscription and its deliveries. `NotFound`.
    fn delete_subscription(
        &self,
        id: SubscriptionId,
    ) -> impl Future<Output = Result<(), WorkflowError>> + Send;

    /// The subscription's deliveries (only those in `status` when given), newest first.
    /// `NotFound` if the subscription does not exist.
    fn deliveries(
        &self,
        subscription: SubscriptionId,
        status: Option<DeliveryStatus>,
    ) -> impl Future<Output = Result<Vec<Delivery>, WorkflowError>> + Send;

    /// Makes a failed or dead delivery `pending` and due at `now`. `NotFound`;
    /// `DeliveryNotRetryable` if it is pending or delivered, or leased by a dispatcher now.
    fn retry_delivery(
        &self,
        id: DeliveryId,
        now: DateTime<Utc>,
        once: Option<Once<Delivery>>,
    ) -> impl Future<Output = Result<Done<Delivery>, WorkflowError>> + Send;

    /// Creates one delivery per event and subscription asking for the event's kind, in one
    /// write for all `events`, each already claimed by the caller for its first try: one
    /// attempt counted, leased until `lease_until` (no dispatcher claims it before then) and
    /// due at `now` (any dispatcher claims it once that lease has ended unmarked). Idempotent:
    /// a subscription that already has a delivery of this event id gets none more (the outbox
    /// may hand an event over more than once). Returns the created deliveries, as claimed.
    fn fan_out(
        &self,
        events: Vec<FanOutEvent>,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> impl Future<Output = Result<Vec<ClaimedDelivery>, WorkflowError>> + Send;

    /// Claims up to `limit` pending or failed deliveries due at `now`, oldest due first,
    /// skipping those another dispatcher holds, and leases them until `lease_until`; each
    /// claim counts one more attempt, which is its [`Lease`](crate::domain::model::Lease). A
    /// claim nobody marks comes due again when its lease ends.
    fn claim_deliveries(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: u32,
    ) -> impl Future<Output = Result<Vec<ClaimedDelivery>, WorkflowError>> + Send;

    /// Records tries, in one write. Fenced: a delivery whose lease ran out by `now`, or that
    /// was claimed again since (its attempts differ), is left as it is. Returns how many were
    /// recorded.
    fn mark_deliveries(
        &self,
        marks: Vec<DeliveryMark>,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<u64, WorkflowError>> + Send;

    /// How many deliveries are in each status.
    fn delivery_counts(&self)
    -> impl Future<Output = Result<DeliveryCounts, WorkflowError>> + Send;
}

/// Sends one delivery to its receiver.
#[cfg_attr(test, mockall::automock)]
pub trait WebhookSender: Send + Sync + 'static {
    /// POSTs the delivery's body, signed, with `at` as its timestamp; any 2xx within the
    /// adapter's time-out is `Delivered`, anything else `Failed` with why. Refuses (as a
    /// failure) a host that resolves to an address the guard refuses.
    fn send(
        &self,
        delivery: &ClaimedDelivery,
        at: DateTime<Utc>,
    ) -> impl Future<Output = SendOutcome> + Send;
}

/// Decides whether a URL may receive deliveries (no server-side request forgery).
#[cfg_attr(test, mockall::automock)]
pub trait UrlGuard: Send + Sync + 'static {
    /// `Err` with why (in words for the subscriber) if the URL's host is, or resolves to, an
    /// address that is refused, or does not resolve at all.
    fn check(&self, url: &WebhookUrl) -> impl Future<Output = Result<(), String>> + Send;
}
