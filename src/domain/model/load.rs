//! How loaded the store is: what an operator watches (the outbox backlog, the connection pool),
//! sampled on demand for the metrics.

use chrono::{DateTime, Utc};

/// A sample of the store's load.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StoreLoad {
    /// Outbox events not yet delivered.
    pub outbox_backlog: u64,
    /// When the oldest of them was written.
    pub oldest_undelivered_at: Option<DateTime<Utc>>,
    /// The connection pool, for a store that has one.
    pub pool: Option<PoolUse>,
}

/// A connection pool's use.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PoolUse {
    /// Connections held by work in progress.
    pub in_use: u32,
    /// Connections open and free.
    pub idle: u32,
    /// Work waiting for a connection.
    pub waiting: u32,
}
