//! The webhook sender: one signed `POST` per try, with reqwest over rustls.
//!
//! No system proxy and no redirects (a redirect could lead anywhere, past the guard), and a
//! resolver that checks every address it hands to the connector: the guard's check at
//! subscription time can't be dodged by a name that later resolves elsewhere (DNS rebinding).
//! A kept-alive connection stays on the address checked when it was opened.

use std::error::Error as StdError;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::header::{CONTENT_TYPE, HeaderValue};

use super::guard::AddressGuard;
use super::signature::sign;
use crate::domain::webhooks::model::{ClaimedDelivery, SendOutcome};
use crate::domain::webhooks::ports::WebhookSender;

/// How long an idle connection to a receiver is kept for the next delivery.
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(4);

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
            // Connections are kept alive between deliveries (a connection per delivery costs
            // both ends a handshake: 5% of the approval rate in the bench with webhooks on),
            // but not for long: receivers close idle connections, commonly after 5 s or more.
            .pool_idle_timeout(POOL_IDLE_TIMEOUT)
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
        // An address literal is checked here: the connector does not resolve it, so the
        // resolver never sees it. A name is checked by the resolver, on the addresses it hands
        // to the connector, whenever a connection is opened (not looked up once more for every
        // delivery); its refusal is among the causes the error records.
        if let Err(reason) = self.guard.check_literal(&delivery.url) {
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
        let started = Instant::now();
        let mut sent = self
            .post(delivery, timestamp, &signature, self.timeout)
            .await;
        if let Err(e) = &sent
            && on_a_connection_that_went_away(e)
        {
            // A kept-alive connection can be closed by the receiver while the request is on
            // its way: sent again, on another connection, within what is left of the time-out
            // (the claim's lease covers one time-out). The receiver may see it twice, which
            // it must handle anyway (`webhook-id`).
            if let Some(left) = self.timeout.checked_sub(started.elapsed()) {
                sent = self.post(delivery, timestamp, &signature, left).await;
            }
        }
        match sent {
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

impl HttpSender {
    /// One signed `POST` of the delivery's body, answered within `timeout`.
    async fn post(
        &self,
        delivery: &ClaimedDelivery,
        timestamp: i64,
        signature: &str,
        timeout: Duration,
    ) -> reqwest::Result<reqwest::Response> {
        self.client
            .post(delivery.url.url().clone())
            .timeout(timeout)
            .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
            .header("webhook-id", &delivery.event_id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature)
            .body(delivery.body.clone())
            .send()
            .await
    }
}

/// The request failed after a connection was had (not in connecting, not by the time-out):
/// the sign of a kept-alive connection the receiver closed meanwhile.
fn on_a_connection_that_went_away(error: &reqwest::Error) -> bool {
    error.is_request() && !error.is_connect() && !error.is_timeout()
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

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream};

    use super::*;
    use crate::domain::model::Lease;
    use crate::domain::webhooks::model::{WebhookSecret, WebhookUrl};

    #[derive(Default)]
    struct Seen {
        connections: AtomicUsize,
        requests: AtomicUsize,
    }

    /// Reads one request (head and `content-length` body); `false` at the end of the stream.
    async fn read_request(stream: &mut TcpStream) -> bool {
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        loop {
            if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
                let length: usize = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .map_or(0, |v| v.trim().parse().unwrap());
                if buf.len() >= end + 4 + length {
                    return true;
                }
            }
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return false,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
    }

    /// A receiver that answers the first request on each connection (keeping it alive) and
    /// closes a connection when a second request arrives on it, unanswered: the race of a
    /// receiver closing an idle connection as a delivery is sent on it, made certain.
    async fn closing_receiver() -> (String, Arc<Seen>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let seen = Arc::new(Seen::default());
        let counts = Arc::clone(&seen);
        tokio::spawn(async move {
            loop {
                let (mut stream, _) = listener.accept().await.unwrap();
                counts.connections.fetch_add(1, Ordering::SeqCst);
                let counts = Arc::clone(&counts);
                tokio::spawn(async move {
                    if !read_request(&mut stream).await {
                        return;
                    }
                    counts.requests.fetch_add(1, Ordering::SeqCst);
                    stream
                        .write_all(b"HTTP/1.1 204 No Content\r\n\r\n")
                        .await
                        .unwrap();
                    if read_request(&mut stream).await {
                        counts.requests.fetch_add(1, Ordering::SeqCst);
                    }
                    // Dropped: closed without an answer.
                });
            }
        });
        (url, seen)
    }

    fn delivery(url: &str, id: i64) -> ClaimedDelivery {
        ClaimedDelivery {
            lease: Lease { id, attempts: 1 },
            url: WebhookUrl::parse(url).unwrap(),
            secret: WebhookSecret::from_stored("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".to_owned()),
            event_id: format!("evt_{id}"),
            body: "{}".to_owned(),
        }
    }

    /// With private networks refused, a delivery to a loopback address is refused before it is
    /// sent, whether the URL names the address or a name that resolves to it.
    #[tokio::test]
    async fn a_refused_address_fails_the_try_in_words() {
        let (url, seen) = closing_receiver().await;
        let port = url.rsplit(':').next().unwrap().trim_end_matches("/hook");
        let sender = HttpSender::new(Duration::from_secs(5), false).unwrap();
        for url in [
            format!("http://127.0.0.1:{port}/hook"),
            format!("http://localhost:{port}/hook"),
        ] {
            let outcome = sender.send(&delivery(&url, 1), Utc::now()).await;
            let SendOutcome::Failed {
                status: None,
                error,
            } = outcome
            else {
                panic!("{url}: not refused: {outcome:?}");
            };
            assert!(error.contains("non-public address"), "{url}: {error}");
        }
        assert_eq!(seen.connections.load(Ordering::SeqCst), 0);
    }

    /// The second delivery goes out on the kept-alive connection of the first, which the
    /// receiver closes unanswered: it is sent again on a new connection, within the same try.
    #[tokio::test]
    async fn a_delivery_on_a_connection_closed_meanwhile_is_sent_again_at_once() {
        let (url, seen) = closing_receiver().await;
        let sender = HttpSender::new(Duration::from_secs(5), true).unwrap();
        for id in 1..=2 {
            let outcome = sender.send(&delivery(&url, id), Utc::now()).await;
            assert_eq!(
                outcome,
                SendOutcome::Delivered { status: 204 },
                "delivery {id}"
            );
        }
        assert_eq!(seen.connections.load(Ordering::SeqCst), 2);
        assert_eq!(seen.requests.load(Ordering::SeqCst), 3);
    }
}
