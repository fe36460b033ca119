//! Events published to a real NATS JetStream server: an approval walk's events read back from
//! the stream, a redelivered event stored once (`publish`), and an outage survived through the
//! outbox (`outage`).
//!
//! Tests that may share a server use `NATS_TEST_URL` when it is set (scripts/test.sh provides
//! one) and otherwise start their own; tests that stop and restart the server always start their
//! own `nats-server -js` on a free port with a private store directory. Without the
//! `nats-server` binary (`NATS_SERVER_BIN`, else `/usr/sbin/nats-server`, else on `PATH`) they
//! say so and skip.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use approvals::outbound::nats::{DEFAULT_STREAM, NatsCallbacks, NatsConfig};
use async_nats::jetstream::{self, consumer};
use futures_util::StreamExt;
use serde_json::Value;

mod outage;
mod publish;

/// The `nats-server` binary, if there is one.
fn server_binary() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("NATS_SERVER_BIN") {
        return Some(PathBuf::from(path));
    }
    let default = PathBuf::from("/usr/sbin/nats-server");
    if default.is_file() {
        return Some(default);
    }
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join("nats-server"))
            .find(|p| p.is_file())
    })
}

static SERVERS: AtomicU32 = AtomicU32::new(0);

/// A private `nats-server -js` on a free port, with its own store directory; it can be stopped
/// and started again on the same port and directory. Removed when dropped.
pub struct NatsServer {
    binary: PathBuf,
    port: u16,
    dir: PathBuf,
    child: Option<Child>,
}

impl NatsServer {
    /// Starts a server, or `None` (after saying why) when there is no binary.
    pub async fn start(test: &str) -> Option<NatsServer> {
        let Some(binary) = server_binary() else {
            eprintln!(
                "skipping {test}: no nats-server binary (install the Debian package nats-server \
                 or set NATS_SERVER_BIN)"
            );
            return None;
        };
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let dir = std::env::temp_dir().join(format!(
            "approvals-nats-{}-{}",
            std::process::id(),
            SERVERS.fetch_add(1, Ordering::SeqCst)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let mut server = NatsServer {
            binary,
            port,
            dir,
            child: None,
        };
        server.resume().await;
        Some(server)
    }

    /// The client URL.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Kills the server at once, as a crash would.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server (again) on its port and store directory, and waits until it listens.
    pub async fn resume(&mut self) {
        assert!(self.child.is_none(), "the server is already running");
        let child = Command::new(&self.binary)
            .args(["-js", "-a", "127.0.0.1", "-p"])
            .arg(self.port.to_string())
            .arg("-sd")
            .arg(&self.dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nats-server starts");
        self.child = Some(child);
        let addr = format!("127.0.0.1:{}", self.port);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        while tokio::net::TcpStream::connect(&addr).await.is_err() {
            assert!(
                tokio::time::Instant::now() < deadline,
                "nats-server did not listen on {addr}"
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A server the test may share: `NATS_TEST_URL` if set (the returned server is `None`), else a
/// private one; `None` for both when there is no binary (skip).
pub async fn shared_server(test: &str) -> Option<(String, Option<NatsServer>)> {
    if let Some(url) = std::env::var("NATS_TEST_URL")
        .ok()
        .filter(|u| !u.is_empty())
    {
        return Some((url, None));
    }
    let server = NatsServer::start(test).await?;
    Some((server.url(), Some(server)))
}

/// The adapter's configuration for `url`, with the default stream and a short time-out.
pub fn config(url: &str) -> NatsConfig {
    NatsConfig {
        url: url.to_owned(),
        stream: DEFAULT_STREAM.to_owned(),
        timeout: Duration::from_secs(2),
    }
}

/// An adapter connected to `url`.
pub async fn adapter(url: &str) -> NatsCallbacks {
    NatsCallbacks::connect(config(url)).await.unwrap()
}

/// A plain client of the stream, for reading what the adapter published.
pub struct Reader {
    jetstream: jetstream::Context,
}

/// One message read from the stream.
#[derive(Debug, Clone)]
pub struct Published {
    pub subject: String,
    /// Its `Nats-Msg-Id` header.
    pub msg_id: String,
    pub envelope: Value,
}

impl Reader {
    pub async fn connect(url: &str) -> Reader {
        let client = async_nats::connect(url).await.expect("NATS answers");
        Reader {
            jetstream: jetstream::new(client),
        }
    }

    /// The stream's last sequence number (0 when it is empty or does not exist yet).
    pub async fn last_sequence(&self) -> u64 {
        match self.jetstream.get_stream(DEFAULT_STREAM).await {
            Ok(stream) => stream.cached_info().state.last_sequence,
            Err(_) => 0,
        }
    }

    /// Every message stored after sequence `after`, in order, read with an ephemeral pull
    /// consumer.
    pub async fn messages_after(&self, after: u64) -> Vec<Published> {
        let stream = self.jetstream.get_stream(DEFAULT_STREAM).await.unwrap();
        let consumer = stream
            .create_consumer(consumer::pull::Config {
                deliver_policy: consumer::DeliverPolicy::ByStartSequence {
                    start_sequence: after + 1,
                },
                ack_policy: consumer::AckPolicy::None,
                ..Default::default()
            })
            .await
            .unwrap();
        let mut out = Vec::new();
        loop {
            let mut batch = consumer.fetch().max_messages(100).messages().await.unwrap();
            let before = out.len();
            while let Some(message) = batch.next().await {
                let message = message.unwrap();
                let msg_id = message
                    .headers
                    .as_ref()
                    .and_then(|h| h.get("Nats-Msg-Id"))
                    .map(|v| v.as_str().to_owned())
                    .unwrap_or_default();
                out.push(Published {
                    subject: message.subject.to_string(),
                    msg_id,
                    envelope: serde_json::from_slice(&message.payload).unwrap(),
                });
            }
            if out.len() == before {
                return out;
            }
        }
    }

    /// The messages after `after` whose event id is one of `ids`.
    pub async fn messages_among(&self, after: u64, ids: &[String]) -> Vec<Published> {
        self.messages_after(after)
            .await
            .into_iter()
            .filter(|m| ids.contains(&m.msg_id))
            .collect()
    }
}
