//! The state machine (domain core, pure): a decision seen from the directory's side. Whether
//! the actor is an active user is not part of the instance, so the repository's unit of work
//! reads it with the locked rows and hands it in; this puts the directory's refusals in their
//! place among the machine's own.

use chrono::{DateTime, Utc};

use super::decide;
use crate::domain::error::WorkflowError;
use crate::domain::model::{Decided, DecisionRequest, Instance};

/// Decides like [`decide`], for an actor whose directory entry is `active`: `Some(true)` an
/// active user, `Some(false)` an inactive one, `None` no user at all.
///
/// Refusals, in the order checked: the step is not part of the instance (`NotFound`); the actor
/// is inactive (`UserInactive`), even when the step's snapshot holds it, since the snapshot
/// says who was eligible at trigger time, not who may still act; the actor is not in the
/// snapshot (`NotAnApprover`, or `UnknownUser` when it is no user at all); then the machine's
/// own refusals on the step's state. A user who is no longer in the directory but is in the
/// snapshot may still act: eligibility is the snapshot.
pub fn decide_as(
    instance: &Instance,
    request: &DecisionRequest,
    active: Option<bool>,
    now: DateTime<Utc>,
) -> Result<Decided, WorkflowError> {
    let on_instance = instance.steps.iter().any(|s| s.id == request.step_id);
    if on_instance && active == Some(false) {
        return Err(WorkflowError::UserInactive {
            user: request.acted_by,
        });
    }
    decide(instance, request, now).map_err(|refusal| match refusal {
        WorkflowError::NotAnApprover { user, .. } if active.is_none() => {
            WorkflowError::UnknownUser {
                user,
                field: "acted_by_user_id",
            }
        }
        other => other,
    })
}
