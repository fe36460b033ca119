//! Driven adapter (outbound), in-memory store: the user directory behind `RoleResolver`.
//! Roles exist as soon as someone is given them; instances keep the eligible users they
//! snapshotted, so changing the directory never touches them.

use super::{MemoryStore, State};
use crate::domain::error::WorkflowError;
use crate::domain::model::{Approver, RoleName, User, UserId};
use crate::domain::ports::RoleResolver;

#[cfg(any(test, feature = "test-support"))]
impl MemoryStore {
    /// Adds a user (or renames one).
    pub fn add_user(&self, id: UserId, name: &str) {
        self.lock().users.insert(id, name.to_owned());
    }

    /// Replaces the roles `user` holds.
    pub fn set_user_roles(&self, user: UserId, roles: &[RoleName]) {
        self.lock().set_user_roles(user, roles);
    }
}

impl State {
    fn set_user_roles(&mut self, user: UserId, roles: &[RoleName]) {
        for members in self.roles.values_mut() {
            members.remove(&user);
        }
        for role in roles {
            self.roles.entry(role.clone()).or_default().insert(user);
        }
    }

    fn put_user(&mut self, user: User) -> bool {
        let created = self.users.insert(user.id, user.name).is_none();
        self.set_user_roles(user.id, &user.roles);
        created
    }

    fn eligible_users(&self, approver: &Approver) -> Vec<UserId> {
        match approver {
            Approver::User { user_id } if self.users.contains_key(user_id) => vec![*user_id],
            Approver::User { .. } => Vec::new(),
            Approver::Role { role } => self
                .roles
                .get(role)
                .map(|members| members.iter().copied().collect())
                .unwrap_or_default(),
        }
    }
}

impl RoleResolver for MemoryStore {
    async fn put_user(&self, user: User) -> Result<bool, WorkflowError> {
        Ok(self.lock().put_user(user))
    }

    async fn user_exists(&self, user: UserId) -> Result<bool, WorkflowError> {
        Ok(self.lock().users.contains_key(&user))
    }

    async fn eligible_users(
        &self,
        approvers: &[Approver],
    ) -> Result<Vec<Vec<UserId>>, WorkflowError> {
        let state = self.lock();
        Ok(approvers.iter().map(|a| state.eligible_users(a)).collect())
    }
}
