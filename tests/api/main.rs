//! The integration test binary, one per crate so that it links once: HTTP end to end against
//! both stores (`http`), the repository contract against both adapters (`contract`), and
//! PostgreSQL-only guarantees: locks, triggers, outbox (`postgres`); webhooks sent to a real
//! receiver (`webhooks`); events published to a real NATS JetStream server (`nats`). `helpers`
//! spawns apps and test databases; `fixtures` holds the domain values every suite builds.
//!
//! PostgreSQL comes from `TEST_DATABASE_URL` (a fresh database is created per test and dropped
//! after it); `TEST_LOG=1` shows the logs.

mod fixtures;
mod helpers;

mod contract;
mod http;
mod nats;
mod postgres;
mod webhooks;
