//! Domain core, model: a delegation, one user letting another act for them until a time.
//!
//! While it runs, the delegate may decide the steps where the delegator is eligible; it is not
//! transitive (a delegate acts for its own delegators only, never for theirs).

use chrono::{DateTime, Utc};

use super::values::{Comment, UserId};

/// `user_id` lets `to_user_id` act for them until `until` (exclusive).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delegation {
    /// The delegator.
    pub user_id: UserId,
    /// The delegate.
    pub to_user_id: UserId,
    pub until: DateTime<Utc>,
    /// Why, for the people reading it (a comment's rules).
    pub reason: Option<Comment>,
    pub created_at: DateTime<Utc>,
}

impl Delegation {
    /// Whether it runs at `now`: `until` has not come. (It starts when it is stored.)
    pub fn runs_at(&self, now: DateTime<Utc>) -> bool {
        now < self.until
    }
}
