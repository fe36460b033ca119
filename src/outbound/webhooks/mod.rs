//! Outbound adapters for webhooks: the HTTP sender (`sender`, reqwest over rustls, Standard
//! Webhooks signatures from `signature`), the guard against server-side request forgery
//! (`guard`), and the `Callbacks` adapter that hands each outbox event to the webhook
//! deliveries (`fan_out`).

mod fan_out;
mod guard;
mod sender;
pub mod signature;

use std::time::Duration;

use crate::domain::webhooks::model::RetrySchedule;

pub use fan_out::WebhookFanOut;
pub use guard::{AddressGuard, is_refused};
pub use sender::HttpSender;

/// How webhooks are sent: from the configuration.
#[derive(Debug, Clone)]
pub struct WebhookSettings {
    /// Lets subscriptions and deliveries reach loopback, private and link-local addresses
    /// (tests and local demos).
    pub allow_private_networks: bool,
    /// How long a receiver has to answer.
    pub timeout: Duration,
    /// The delays after each failed try.
    pub schedule: RetrySchedule,
    /// How often the dispatcher looks for due deliveries when nothing wakes it.
    pub poll_interval: Duration,
}

impl Default for WebhookSettings {
    fn default() -> Self {
        Self {
            allow_private_networks: false,
            timeout: Duration::from_secs(10),
            schedule: RetrySchedule::default(),
            poll_interval: Duration::from_secs(1),
        }
    }
}

impl WebhookSettings {
    /// The claim's lease: the time-out and a margin, so that a try ends before its lease does
    /// and its outcome is recorded.
    pub fn lease(&self) -> Duration {
        self.timeout + Duration::from_secs(5)
    }
}
