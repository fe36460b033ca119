//! Outbound adapters: the implementations of the domain's ports.
//!
//! `postgres` and `memory` implement `WorkflowRepository` and `RoleResolver` with the same
//! contract; `callbacks` holds the `Callbacks` sinks; `clock` the system clock;
//! `conditions` the step conditions' expression language (CEL); `envelope` the published JSON
//! shape of an event, which every external adapter sends; `nats` publishes events to NATS
//! JetStream.

pub mod callbacks;
pub mod clock;
pub mod conditions;
pub mod envelope;
pub mod memory;
pub mod nats;
pub mod postgres;
