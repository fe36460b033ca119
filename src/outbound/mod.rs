//! Outbound adapters: the implementations of the domain's ports.
//!
//! `postgres` and `memory` implement `WorkflowRepository` and `RoleResolver` with the same
//! contract; `callbacks` holds the `Callbacks` sinks; `clock` the system clock.

pub mod callbacks;
pub mod clock;
pub mod memory;
pub mod postgres;
