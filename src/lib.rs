//! Approval workflow engine for property-management platforms.
//!
//! The crate is a hexagon: `domain` is the pure core (model, state machine, ports, service,
//! dispatcher); `inbound` holds the adapters that drive it (HTTP); `outbound` the adapters it
//! drives (PostgreSQL, in-memory, callbacks, clock). The wiring sits beside them: `app` joins
//! them into a running service, `config` reads the environment, `open_files` sizes the
//! connection cap under the process's file limit, `telemetry` sets up logging, and `demo` is
//! the demo data set, loaded through the use cases.

pub mod app;
pub mod config;
pub mod demo;
pub mod domain;
pub mod inbound;
pub mod open_files;
pub mod outbound;
pub mod telemetry;
