//! Driven adapter (outbound), in-memory store: the user directory behind `RoleResolver`.
//! Roles exist as soon as someone is given them; instances keep the eligible users they
//! snapshotted, so changing the directory never touches them. Inactive users stay in the
//! directory with their roles, and are left out of new snapshots.

use std::collections::BTreeMap;

use super::{MemoryStore, State};
use crate::domain::error::WorkflowError;
use chrono::{DateTime, Utc};

use crate::domain::model::{Approver, Delegation, RoleName, User, UserId};
use crate::domain::ports::RoleResolver;

/// What the directory keeps of a user besides its roles (those are indexed by role).
#[derive(Debug, Clone)]
pub(super) struct Entry {
    name: String,
    pub(super) active: bool,
}

#[cfg(any(test, feature = "test-support"))]
impl MemoryStore {
    /// Adds a user (or renames one), leaving its roles and active flag as they are; a new user
    /// is active.
    pub fn add_user(&self, id: UserId, name: &str) {
        let mut state = self.lock();
        let entry = state.users.entry(id).or_insert_with(|| Entry {
            name: String::new(),
            active: true,
        });
        entry.name = name.to_owned();
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
        let entry = Entry {
            name: user.name,
            active: user.active,
        };
        let created = self.users.insert(user.id, entry).is_none();
        self.set_user_roles(user.id, &user.roles);
        created
    }

    fn is_active(&self, user: &UserId) -> bool {
        self.users.get(user).is_some_and(|e| e.active)
    }

    fn eligible_users(&self, approver: &Approver) -> Vec<UserId> {
        match approver {
            Approver::User { user_id } if self.is_active(user_id) => vec![*user_id],
            Approver::User { .. } => Vec::new(),
            Approver::Role { role } => self
                .roles
                .get(role)
                .map(|members| {
                    members
                        .iter()
                        .copied()
                        .filter(|u| self.is_active(u))
                        .collect()
                })
                .unwrap_or_default(),
        }
    }

    /// The delegations to `user` from active users, running or not.
    pub(super) fn delegations_to(&self, user: UserId) -> Vec<Delegation> {
        self.delegations
            .values()
            .filter(|d| d.to_user_id == user && self.is_active(&d.user_id))
            .cloned()
            .collect()
    }

    fn put_delegation(
        &mut self,
        delegation: Delegation,
        now: DateTime<Utc>,
    ) -> Result<(), WorkflowError> {
        let (user, to_user) = (delegation.user_id, delegation.to_user_id);
        if !self.users.contains_key(&user) {
            return Err(WorkflowError::not_found(format!("user {user}")));
        }
        match self.users.get(&to_user) {
            None => {
                return Err(WorkflowError::UnknownUser {
                    user: to_user,
                    field: "to_user_id",
                });
            }
            Some(entry) if !entry.active => {
                return Err(WorkflowError::inactive_delegate(to_user));
            }
            Some(_) => {}
        }
        // Follow the running delegations from the delegate on: reaching the delegator means
        // this one would close a cycle, however long. Each user has one delegation, so the
        // walk is a path; it ends within as many steps as there are delegations.
        let mut next = to_user;
        for _ in 0..=self.delegations.len() {
            match self.delegations.get(&next).filter(|d| d.runs_at(now)) {
                Some(d) if d.to_user_id == user => {
                    return Err(WorkflowError::DelegationCycle { user, to_user });
                }
                Some(d) => next = d.to_user_id,
                None => break,
            }
        }
        self.delegations.insert(user, delegation);
        Ok(())
    }

    /// Every user's roles, sorted (the role index is ordered by role name).
    fn roles_by_user(&self) -> BTreeMap<UserId, Vec<RoleName>> {
        let mut held: BTreeMap<UserId, Vec<RoleName>> = BTreeMap::new();
        for (role, members) in &self.roles {
            for user in members {
                held.entry(*user).or_default().push(role.clone());
            }
        }
        held
    }

    fn user(&self, id: UserId, roles: &mut BTreeMap<UserId, Vec<RoleName>>) -> Option<User> {
        self.users.get(&id).map(|entry| User {
            id,
            name: entry.name.clone(),
            roles: roles.remove(&id).unwrap_or_default(),
            active: entry.active,
        })
    }
}

impl RoleResolver for MemoryStore {
    async fn put_user(&self, user: User) -> Result<bool, WorkflowError> {
        Ok(self.lock().put_user(user))
    }

    async fn user_exists(&self, user: UserId) -> Result<bool, WorkflowError> {
        Ok(self.lock().users.contains_key(&user))
    }

    async fn user_active(&self, user: UserId) -> Result<Option<bool>, WorkflowError> {
        Ok(self.lock().users.get(&user).map(|e| e.active))
    }

    async fn user(&self, id: UserId) -> Result<Option<User>, WorkflowError> {
        let state = self.lock();
        let mut roles = state.roles_by_user();
        Ok(state.user(id, &mut roles))
    }

    async fn users(&self, role: Option<RoleName>) -> Result<Vec<User>, WorkflowError> {
        let state = self.lock();
        let mut roles = state.roles_by_user();
        let ids: Vec<UserId> = match &role {
            None => state.users.keys().copied().collect(),
            // Members are a sorted set: already by id.
            Some(role) => state
                .roles
                .get(role)
                .map(|members| members.iter().copied().collect())
                .unwrap_or_default(),
        };
        Ok(ids
            .into_iter()
            .filter_map(|id| state.user(id, &mut roles))
            .collect())
    }

    async fn eligible_users(
        &self,
        approvers: &[Approver],
    ) -> Result<Vec<Vec<UserId>>, WorkflowError> {
        let state = self.lock();
        Ok(approvers.iter().map(|a| state.eligible_users(a)).collect())
    }

    async fn put_delegation(
        &self,
        delegation: Delegation,
        now: DateTime<Utc>,
    ) -> Result<(), WorkflowError> {
        self.lock().put_delegation(delegation, now)
    }

    async fn end_delegation(
        &self,
        user: UserId,
        now: DateTime<Utc>,
    ) -> Result<bool, WorkflowError> {
        let removed = self.lock().delegations.remove(&user);
        Ok(removed.is_some_and(|d| d.runs_at(now)))
    }

    async fn delegation(
        &self,
        user: UserId,
        now: DateTime<Utc>,
    ) -> Result<Option<Delegation>, WorkflowError> {
        Ok(self
            .lock()
            .delegations
            .get(&user)
            .filter(|d| d.runs_at(now))
            .cloned())
    }

    async fn delegators_of(
        &self,
        user: UserId,
        now: DateTime<Utc>,
    ) -> Result<Vec<UserId>, WorkflowError> {
        Ok(self
            .lock()
            .delegations_to(user)
            .into_iter()
            .filter(|d| d.runs_at(now))
            .map(|d| d.user_id)
            .collect())
    }
}
