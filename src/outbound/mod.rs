//! Outbound adapters: the implementations of the domain's ports.
//!
//! `postgres` and `memory` implement `WorkflowRepository` and `RoleResolver` with the same
//! contract; `callbacks` holds the `Callbacks` sinks; `clock` the system clock;
//! `conditions` the step conditions' expression language (CEL); `envelope` the published JSON
//! shape of an event, which every external adapter sends; `webhooks` the webhook sender, its
//! address guard and the fan-out of events to subscriptions; `nats` publishes events to NATS
//! JetStream.

pub mod callbacks;
pub mod clock;
pub mod conditions;
pub mod envelope;
pub mod memory;
pub mod nats;
pub mod postgres;
pub mod webhooks;
