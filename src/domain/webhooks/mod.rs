//! The domain core's webhooks: subscriptions, the deliveries an event fans out to, and the
//! dispatcher that sends them.
//!
//! `model` holds the types (a subscription's URL and secret, a delivery and its states, the
//! retry schedule); `ports` the driving port (`WebhookUseCases`) and the driven ones (the
//! store's webhook half, the sender, the URL guard); `service` the use cases; `dispatcher` the
//! loop that claims due deliveries under a lease, sends them and records the outcome. Nothing
//! here speaks HTTP or SQL: the sender and the stores are adapters.

pub mod dispatcher;
pub mod model;
pub mod ports;
pub mod service;

pub use service::WebhookService;
