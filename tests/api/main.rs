//! The integration test binary: HTTP end to end against both stores, the repository contract
//! suite against both adapters, and PostgreSQL-only guarantees (locks, triggers, outbox).

mod contract;
mod helpers;
mod http;
mod postgres;
