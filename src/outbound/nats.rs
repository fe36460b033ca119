//! Driven adapter, NATS JetStream: a `Callbacks` sink that publishes each event's envelope to a
//! JetStream stream, one subject per event type (`approvals.<type>`, e.g.
//! `approvals.instance.approved`), with the event id as `Nats-Msg-Id` so that the stream stores a
//! redelivered event once.
//!
//! An event counts as delivered only once JetStream has acknowledged it (stored it); anything
//! else (not connected, no stream, no acknowledgement within the time-out) is an `Err`, and the
//! event stays in the outbox for the dispatcher's next attempt. The connection is made in the
//! background and re-made after an outage, so `serve` starts whether NATS is up or not.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_nats::Event;
use async_nats::connection::State;
use async_nats::jetstream::{self, message::PublishMessage, stream};
use bytes::Bytes;

use crate::domain::model::{OutboxItem, ReadinessCheck};
use crate::domain::ports::Callbacks;
use crate::outbound::envelope::envelope_json;

/// The prefix of every subject the adapter publishes to; the stream takes `approvals.>`.
pub const SUBJECT_PREFIX: &str = "approvals";

/// How long the stream remembers an event id to drop a second copy. Longer than the
/// dispatcher's longest wait between two attempts (5 minutes) plus its claim lease (1 minute),
/// so that an event whose acknowledgement was lost is recognised when it comes again.
pub const DUPLICATE_WINDOW: Duration = Duration::from_secs(3600);

/// Where and how to publish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NatsConfig {
    /// The server(s), as the NATS client takes them (`nats://host:4222`, comma-separated).
    pub url: String,
    /// The JetStream stream the events go to (created if missing).
    pub stream: String,
    /// Longest wait for JetStream's acknowledgement of one event (and for one API request).
    pub timeout: Duration,
}

/// Default of `NATS_STREAM`.
pub const DEFAULT_STREAM: &str = "APPROVALS";
/// Default of `NATS_TIMEOUT`.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// The servers of a comma-separated URL list, each trimmed.
fn servers(url: &str) -> Vec<&str> {
    url.split(',').map(str::trim).collect()
}

/// Publishes events to JetStream.
pub struct NatsCallbacks {
    client: async_nats::Client,
    jetstream: jetstream::Context,
    config: NatsConfig,
    /// Whether the stream is known to exist; checked again after a publish finds no stream.
    stream_ready: AtomicBool,
}

impl NatsCallbacks {
    /// Starts connecting to `config.url` in the background (retrying until it answers) and, if
    /// the server answers within the time-out, makes sure the stream exists; otherwise the
    /// first delivery or readiness check does. Errs only on a URL or option that can never work.
    pub async fn connect(config: NatsConfig) -> Result<Self, String> {
        let client = async_nats::ConnectOptions::new()
            .name("approvals")
            .retry_on_initial_connect()
            .max_reconnects(None)
            .connection_timeout(config.timeout)
            .request_timeout(Some(config.timeout))
            .event_callback(|event| async move {
                // Each failed reconnection attempt is a client error: the log gets the changes
                // of state, not every attempt.
                match event {
                    Event::Connected => tracing::info!("NATS connected"),
                    Event::Disconnected => tracing::warn!("NATS disconnected; reconnecting"),
                    Event::ClientError(_) => tracing::debug!(%event, "NATS connection attempt"),
                    other => tracing::info!(event = %other, "NATS connection event"),
                }
            })
            .connect(servers(&config.url))
            .await
            .map_err(|e| format!("NATS_URL: {e}"))?;
        let mut jetstream = jetstream::new(client.clone());
        jetstream.set_timeout(config.timeout);
        let adapter = Self {
            client,
            jetstream,
            config,
            stream_ready: AtomicBool::new(false),
        };
        // A first look, without waiting long: at start NATS may well be down.
        let wait = adapter.config.timeout;
        if tokio::time::timeout(wait, adapter.until_connected())
            .await
            .is_ok()
        {
            if let Err(e) = adapter.ensure_stream().await {
                tracing::warn!(error = %e, "NATS stream not ready yet; events wait in the outbox");
            }
        } else {
            tracing::warn!(url = %adapter.config.url, "NATS does not answer yet; events wait in the outbox");
        }
        Ok(adapter)
    }

    /// The subject of an event type: `approvals.instance.approved`.
    pub fn subject(event_type: &str) -> String {
        format!("{SUBJECT_PREFIX}.{event_type}")
    }

    /// The stream's configuration as this adapter creates it.
    pub fn stream_config(name: &str) -> stream::Config {
        stream::Config {
            name: name.to_owned(),
            subjects: vec![format!("{SUBJECT_PREFIX}.>")],
            storage: stream::StorageType::File,
            duplicate_window: DUPLICATE_WINDOW,
            ..Default::default()
        }
    }

    async fn until_connected(&self) {
        let mut tick = tokio::time::interval(Duration::from_millis(50));
        while self.client.connection_state() != State::Connected {
            tick.tick().await;
        }
    }

    fn connected(&self) -> Result<(), String> {
        match self.client.connection_state() {
            State::Connected => Ok(()),
            other => Err(format!("NATS is not connected ({other})")),
        }
    }

    /// Creates the stream if it does not exist (an existing one is used as it is configured).
    async fn ensure_stream(&self) -> Result<(), String> {
        if self.stream_ready.load(Ordering::Acquire) {
            return Ok(());
        }
        self.connected()?;
        let config = Self::stream_config(&self.config.stream);
        tokio::time::timeout(
            self.config.timeout,
            self.jetstream.get_or_create_stream(config),
        )
        .await
        .map_err(|_| "NATS did not answer the stream request in time".to_owned())?
        .map_err(|e| format!("NATS stream {}: {e}", self.config.stream))?;
        self.stream_ready.store(true, Ordering::Release);
        tracing::info!(stream = %self.config.stream, "NATS stream ready");
        Ok(())
    }

    async fn publish(&self, item: &OutboxItem) -> Result<(), String> {
        // Not connected: fail now rather than queue the message in the client until the
        // time-out; the outbox keeps it.
        self.connected()?;
        self.ensure_stream().await?;
        let subject = Self::subject(item.event.kind.event_type());
        let message = PublishMessage::build()
            .message_id(&item.event_id)
            .payload(Bytes::from(envelope_json(item)));
        let ack = self
            .jetstream
            .send_publish(subject, message)
            .await
            .map_err(|e| format!("NATS publish: {e}"))?
            .await;
        match ack {
            Ok(ack) => {
                if ack.duplicate {
                    tracing::debug!(event_id = %item.event_id, "NATS already had this event");
                }
                Ok(())
            }
            Err(e) => {
                if e.kind() == jetstream::context::PublishErrorKind::StreamNotFound {
                    // Someone removed the stream: make it again on the next attempt.
                    self.stream_ready.store(false, Ordering::Release);
                }
                Err(format!("NATS publish not acknowledged: {e}"))
            }
        }
    }
}

impl Callbacks for NatsCallbacks {
    async fn deliver(&self, item: &OutboxItem) -> Result<(), String> {
        // The client's own time-outs bound each step; this bounds the whole, whatever happens.
        tokio::time::timeout(self.config.timeout * 2, self.publish(item))
            .await
            .map_err(|_| "NATS publish timed out".to_owned())?
    }

    async fn ready(&self) -> Vec<ReadinessCheck> {
        vec![ReadinessCheck {
            name: "nats",
            outcome: self.check().await,
        }]
    }
}

impl NatsCallbacks {
    /// Connected, answering, and the stream exists.
    async fn check(&self) -> Result<(), String> {
        self.connected()?;
        // A round trip: the state may lag behind a server that just went away.
        tokio::time::timeout(self.config.timeout, self.client.flush())
            .await
            .map_err(|_| "NATS did not answer in time".to_owned())?
            .map_err(|e| format!("NATS did not answer: {e}"))?;
        self.ensure_stream().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_type_is_a_subject_under_the_prefix() {
        assert_eq!(
            NatsCallbacks::subject("instance.approved"),
            "approvals.instance.approved"
        );
        let config = NatsCallbacks::stream_config("EVENTS");
        assert_eq!(config.name, "EVENTS");
        assert_eq!(config.subjects, vec!["approvals.>".to_owned()]);
        assert!(config.duplicate_window >= Duration::from_secs(360));
        assert_eq!(
            servers("nats://a:4222, nats://b:4222"),
            ["nats://a:4222", "nats://b:4222"]
        );
    }
}
