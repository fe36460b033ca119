//! Outbound adapters: the implementations of the domain's ports.
//!
//! `postgres` and `memory` implement `WorkflowRepository` and `RoleResolver` with the same
//! contract; `callbacks` holds the `Callbacks` sinks; `clock` the system clock;
//! `conditions` the step conditions' expression language (CEL).

pub mod callbacks;
pub mod clock;
pub mod conditions;
pub mod memory;
pub mod postgres;
