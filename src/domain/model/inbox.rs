//! Domain core, model: a page of a user's inbox and where the next one starts.
//!
//! An inbox is ordered by activation time, then step id: a total order that stays put while
//! steps come and go, so a page can start after a position rather than at an offset (an offset
//! would skip or repeat steps as others are decided between two pages).

use chrono::{DateTime, Utc};

use super::{PendingStep, StepId};

/// A position in an inbox: just after the step `step_id` activated at `activated_at`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InboxCursor {
    pub activated_at: DateTime<Utc>,
    pub step_id: StepId,
}

impl InboxCursor {
    /// The position just after `step`; `None` for a step with no activation time, which no
    /// awaiting step lacks (an inbox ending on one has no next page).
    pub fn after(step: &PendingStep) -> Option<Self> {
        step.activated_at.map(|activated_at| Self {
            activated_at,
            step_id: step.step_id,
        })
    }

    /// Whether `step` comes after this position in inbox order.
    pub fn precedes(&self, step: &PendingStep) -> bool {
        step.activated_at
            .is_some_and(|at| (at, step.step_id) > (self.activated_at, self.step_id))
    }
}

/// One page of an inbox, the longest waiting first; `next` is where the following page starts
/// (`None` on the last page).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboxPage {
    pub items: Vec<PendingStep>,
    pub next: Option<InboxCursor>,
}
