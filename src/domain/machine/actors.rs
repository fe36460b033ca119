//! The state machine (domain core, pure): a decision seen from the directory's side. Whether
//! the actor is an active user is not part of the instance, so the repository's unit of work
//! reads it with the locked rows and hands it in; this puts the directory's refusals in their
//! place among the machine's own.

use chrono::{DateTime, Utc};

use super::{decide, decide_for};
use crate::domain::error::WorkflowError;
use crate::domain::model::{Decided, DecisionRequest, Delegation, Instance, UserId};

/// Decides like [`decide`], for an actor whose directory entry is `active`: `Some(true)` an
/// active user, `Some(false)` an inactive one, `None` no user at all.
///
/// Refusals, in the order checked: the step is not part of the instance (`NotFound`); the actor
/// is inactive (`UserInactive`), even when the step's snapshot holds it, since the snapshot
/// says who was eligible at trigger time, not who may still act; the actor is not in the
/// snapshot (`NotAnApprover`, or `UnknownUser` when it is no user at all); then the machine's
/// own refusals on the step's state. A user who is no longer in the directory but is in the
/// snapshot may still act: eligibility is the snapshot.
///
/// An actor who is not in the snapshot acts as a delegate when one of `delegations` (those to
/// the actor, from active users) runs at `now` and its delegator is in the snapshot: the
/// decision is then the delegator's (see [`decide_for`]). Of several such delegators, the
/// lowest id that has not yet approved the step is chosen (else the lowest, which is then
/// `AlreadyApproved`); a delegate who already approved the step for one of them is
/// `AlreadyApproved` too. Delegations are not followed further: only the actor's own delegators
/// count, never theirs. A delegate never acts for anyone on a request they initiated.
pub fn decide_as(
    instance: &Instance,
    request: &DecisionRequest,
    active: Option<bool>,
    delegations: &[Delegation],
    now: DateTime<Utc>,
) -> Result<Decided, WorkflowError> {
    let step = instance.steps.iter().find(|s| s.id == request.step_id);
    if step.is_some() && active == Some(false) {
        return Err(WorkflowError::UserInactive {
            user: request.acted_by,
        });
    }
    // Never on a request the delegate started: approving it in a delegator's name would be
    // approving one's own request, which the snapshot may have ruled out
    // (`forbid_self_approval`) and a delegation must not bring back.
    if let Some(step) = step
        && active.is_some()
        && !step.eligible_user_ids.contains(&request.acted_by)
        && request.acted_by != instance.initiated_by
    {
        let mut delegators: Vec<UserId> = delegations
            .iter()
            .filter(|d| d.to_user_id == request.acted_by && d.runs_at(now))
            .map(|d| d.user_id)
            .filter(|user| step.eligible_user_ids.contains(user))
            .collect();
        delegators.sort_unstable();
        let not_yet = delegators
            .iter()
            .find(|user| !step.approvals.iter().any(|a| a.user_id == **user));
        match (not_yet, delegators.first()) {
            // One person, one approval per step: a delegate who approved it already, for
            // anyone, can't add another in a second delegator's name (a quorum counts people).
            (Some(_), _)
                if step
                    .approvals
                    .iter()
                    .any(|a| a.acted_by == Some(request.acted_by)) =>
            {
                return Err(WorkflowError::AlreadyApproved {
                    user: request.acted_by,
                    step: step.id.get(),
                });
            }
            (Some(principal), _) | (None, Some(principal)) => {
                return decide_for(instance, request, *principal, now);
            }
            (None, None) => {}
        }
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
