//! Approval workflow engine for property-management platforms.
//!
//! The crate is a hexagon: `domain` is the pure core (model, state machine, ports, service,
//! dispatcher); `inbound` holds the adapters that drive it (HTTP); `outbound` the adapters it
//! drives (PostgreSQL, in-memory, callbacks, clock). `app` wires them together, `config` reads
//! the environment, `demo` is the demo data set.

pub mod app;
pub mod config;
pub mod demo;
pub mod domain;
pub mod inbound;
pub mod outbound;
