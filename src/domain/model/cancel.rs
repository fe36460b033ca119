//! Domain model (core): the command to cancel (withdraw) an instance, already validated.

use super::values::{Comment, InstanceId, UserId};

/// The initiator withdraws an active instance, optionally saying why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CancelRequest {
    pub instance_id: InstanceId,
    pub acted_by: UserId,
    pub reason: Option<Comment>,
}
