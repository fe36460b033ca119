//! The domain core: the centre of the hexagon.
//!
//! Pure types and rules of approval workflows (templates, instances, steps, the state machine,
//! audit and callback events, the audit trail's hash chain), the ports the core needs from the
//! outside world, and the service that drives use cases through those ports; `webhooks` the
//! subscriptions and deliveries that carry events to receivers. Nothing here knows about HTTP, SQL or pools.

pub mod audit_chain;
pub mod dispatcher;
pub mod error;
pub mod janitor;
pub mod machine;
pub mod model;
pub mod overdue;
pub mod ports;
pub mod service;
pub mod webhooks;

pub use error::WorkflowError;
pub use service::WorkflowService;
