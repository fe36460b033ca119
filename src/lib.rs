//! Approval workflow engine for property-management platforms.
//!
//! The crate is a hexagon: `domain` is the pure core (model, state machine, ports, service);
//! `inbound` holds the adapters that drive it (HTTP); `outbound` the adapters it drives
//! (PostgreSQL, in-memory, callbacks, clock). `app` wires them together for the binary and tests.

pub mod demo;
pub mod domain;
pub mod outbound;
