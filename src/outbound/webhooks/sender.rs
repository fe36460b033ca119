//! The webhook sender: one signed `POST` per try, with reqwest over rustls.
//!
//! No system proxy and no redirects (a redirect could lead anywhere, past the guard), and a
//! resolver that checks every address it hands to the connector: the guard's check at
//! subscription time can't be dodged by a name that later resolves elsewhere (DNS rebinding).

use std::error::Error as StdError;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::header::{CONTENT_TYPE, HeaderValue};

use super::guard::AddressGuard;
use super::signature::sign;
use crate::domain::webhooks::model::{ClaimedDelivery, SendOutcome};
use crate::domain::webhooks::ports::WebhookSender;

/// Sends deliveries over HTTP(S).
#[derive(Debug, Clone)]
pub struct HttpSender {
    client: reqwest::Client,
    guard: AddressGuard,
    timeout: Duration,
}

impl HttpSender {
    /// A sender whose receivers have `timeout` to answer; `allow_private` lets it reach
    /// private networks. `Err` if the TLS stack can't be set up.
    pub fn new(timeout: Duration, allow_private: bool) -> Result<Self, String> {
        let guard = AddressGuard::new(allow_private);
        let client = reqwest::Client::builder()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .dns_resolver(Arc::new(GuardedResolver { guard }))
            .connect_timeout(timeout)
            // A fresh connection per delivery: a kept-alive one that the receiver has closed
            // meanwhile fails the next delivery sent on it, which would then wait for a retry.
            .pool_max_idle_per_host(0)
            .user_agent(concat!("approvals-webhooks/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("can't set up the webhook HTTP client: {e}"))?;
        Ok(Self {
            client,
            guard,
            timeout,
        })
    }
}

impl WebhookSender for HttpSender {
    async fn send(&self, delivery: &ClaimedDelivery, at: DateTime<Utc>) -> SendOutcome {
        let failed = |status: Option<u16>, error: String| SendOutcome::Failed { status, error };
        // Checked here too (the resolver checks again what it connects to), so that a refused
        // address is recorded in words rather than as a connection error.
        if let Err(reason) = self.guard.resolve(&delivery.url).await {
            return failed(None, reason);
        }
        let key = match delivery.secret.key() {
            Ok(key) => key,
            Err(reason) => return failed(None, reason),
        };
        let timestamp = at.timestamp();
        let signature = sign(
            &key,
            &delivery.event_id,
            timestamp,
            delivery.body.as_bytes(),
        );
        let request = self
            .client
            .post(delivery.url.url().clone())
            .timeout(self.timeout)
            .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
            .header("webhook-id", &delivery.event_id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature)
            .body(delivery.body.clone());
        match request.send().await {
            Ok(response) if response.status().is_success() => SendOutcome::Delivered {
                status: response.status().as_u16(),
            },
            Ok(response) => {
                let status = response.status();
                failed(
                    Some(status.as_u16()),
                    format!("the receiver answered {status}"),
                )
            }
            Err(e) if e.is_timeout() => failed(
                None,
                format!(
                    "the receiver did not answer within {} s",
                    self.timeout.as_secs_f64()
                ),
            ),
            Err(e) => failed(None, describe(&e)),
        }
    }
}

/// The error and its causes, "a: b: c" (reqwest's own message alone says little).
fn describe(error: &reqwest::Error) -> String {
    let mut text = error.to_string();
    let mut next = error.source();
    while let Some(cause) = next {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        next = cause.source();
    }
    text
}

/// Resolves with the system resolver, then refuses the lot if any address is refused.
#[derive(Debug)]
struct GuardedResolver {
    guard: AddressGuard,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let guard = self.guard;
        Box::pin(async move {
            let addrs: Vec<SocketAddr> =
                tokio::net::lookup_host((name.as_str(), 0)).await?.collect();
            guard.check_addrs(&addrs)?;
            let addrs: Addrs = Box::new(addrs.into_iter());
            Ok(addrs)
        })
    }
}
