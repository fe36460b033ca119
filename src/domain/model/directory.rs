//! The user directory: who the users are, which roles they hold, and whether they may still act.

use super::values::{RoleName, UserId};

/// A user of the directory and the roles it holds. An inactive user stays in the directory
/// (and in the snapshots taken while it was active) but is left out of new snapshots and may
/// neither trigger nor decide.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: UserId,
    pub name: String,
    pub roles: Vec<RoleName>,
    pub active: bool,
}
