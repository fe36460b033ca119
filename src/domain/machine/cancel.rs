//! The state machine (domain core, pure): cancelling an instance. Its initiator withdraws it
//! while it is still active; every step not yet decided is cancelled with it.

use chrono::{DateTime, Utc};

use super::audit;
use crate::domain::error::WorkflowError;
use crate::domain::model::{
    AuditAction, CallbackEvent, CallbackKind, CancelRequest, Decided, Instance, InstanceStatus,
    StepStatus,
};

/// Cancels `instance` (which must hold all its steps, read under the row locks).
///
/// Refusals, in the order checked: `instance` is not the one asked for (`Internal`: the store
/// locked the wrong row); the actor is not the initiator (`NotTheInitiator`); the instance has
/// ended (`InstanceNotActive`). Who may act is checked before the state, as for a decision, so
/// a stranger learns nothing about the instance's progress.
pub fn cancel(
    instance: &Instance,
    request: &CancelRequest,
    now: DateTime<Utc>,
) -> Result<Decided, WorkflowError> {
    if instance.id != request.instance_id {
        return Err(WorkflowError::internal(format!(
            "asked to cancel instance {}, given instance {}",
            request.instance_id, instance.id
        )));
    }
    if instance.initiated_by != request.acted_by {
        return Err(WorkflowError::NotTheInitiator {
            user: request.acted_by,
            instance: instance.id.get(),
        });
    }
    if !instance.status.is_active() {
        return Err(WorkflowError::InstanceNotActive {
            instance: instance.id.get(),
            status: instance.status,
        });
    }

    let mut next = instance.clone();
    let mut changed_steps = Vec::new();
    for step in &mut next.steps {
        // Decided steps keep their decision: the cancellation ends only what is still open.
        if matches!(
            step.status,
            StepStatus::Pending | StepStatus::AwaitingAction
        ) {
            step.status = StepStatus::Cancelled;
            changed_steps.push(step.clone());
        }
    }
    next.status = InstanceStatus::Cancelled;
    next.updated_at = now;
    next.completed_at = Some(now);

    let actor = request.acted_by;
    let comment = request.reason.as_ref().map(|r| r.as_str().to_owned());
    let callback = CallbackEvent {
        kind: CallbackKind::OnCancelled,
        instance_id: instance.id,
        event: instance.event.clone(),
        entity_type: instance.entity_type.clone(),
        entity_id: instance.entity_id,
        status: InstanceStatus::Cancelled,
        step: None,
        decided_by: Some(actor),
        comment: comment.clone(),
        at: now,
    };
    Ok(Decided {
        instance: next,
        changed_steps,
        audit: vec![audit(
            None,
            AuditAction::InstanceCancelled,
            Some(actor),
            None,
            comment,
            now,
        )],
        callbacks: vec![callback],
    })
}
