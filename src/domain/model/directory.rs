//! The user directory: who the users are and which roles they hold.

use super::values::{RoleName, UserId};

/// A user of the directory and the roles it holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: UserId,
    pub name: String,
    pub roles: Vec<RoleName>,
}
