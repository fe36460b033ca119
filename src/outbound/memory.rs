//! The in-memory adapter for `WorkflowRepository` and `RoleResolver`: the zero-setup mode and
//! fast tests. Same contract as PostgreSQL: one mutex makes each use case atomic, which gives the
//! race its single winner; the one-active-instance rule is an index; audit entries are only ever
//! appended. Nothing survives the process.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Mutex, MutexGuard};

use chrono::{DateTime, Utc};

use crate::demo::DemoData;
use crate::domain::error::WorkflowError;
use crate::domain::machine;
use crate::domain::model::{
    Approver, AuditEntry, EntityId, EntityType, EventName, Instance, InstanceId, InstanceStep,
    NewAuditEntry, NewInstance, OutboxItem, PendingStep, RoleName, StepId, StepStatus, Template,
    TemplateId, TemplateUpdate, UserId,
};
use crate::domain::ports::{DecideFn, RoleResolver, WorkflowRepository};

type ActiveKey = (EventName, EntityType, EntityId);

struct OutboxRow {
    item: OutboxItem,
    due_at: DateTime<Utc>,
    delivered_at: Option<DateTime<Utc>>,
    last_error: Option<String>,
}

#[derive(Default)]
struct State {
    users: BTreeMap<UserId, String>,
    roles: BTreeMap<RoleName, BTreeSet<UserId>>,
    templates: BTreeMap<TemplateId, Template>,
    instances: BTreeMap<InstanceId, Instance>,
    step_owner: HashMap<StepId, InstanceId>,
    active: HashMap<ActiveKey, InstanceId>,
    outbox: BTreeMap<i64, OutboxRow>,
    last_instance_id: i64,
    last_step_id: i64,
    last_audit_id: i64,
    last_outbox_id: i64,
}

/// All workflow state in one process's memory.
#[derive(Default)]
pub struct MemoryStore {
    state: Mutex<State>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock can't leave a half-applied use case behind (each one
        // validates before it mutates), so a poisoned lock is safe to keep using.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Adds users, roles and templates of the demo (the in-memory store has no property tables).
    pub fn load_reference_data(&self, demo: &DemoData) {
        let mut state = self.lock();
        for role in &demo.roles {
            state.roles.entry(role.clone()).or_default();
        }
        for user in &demo.users {
            state.users.insert(user.id, user.name.to_owned());
            for role in &user.roles {
                state.roles.entry(role.clone()).or_default().insert(user.id);
            }
        }
        for template in &demo.templates {
            state.templates.insert(template.id, template.clone());
        }
    }

    /// Adds a user (or renames one).
    pub fn add_user(&self, id: UserId, name: &str) {
        self.lock().users.insert(id, name.to_owned());
    }

    /// Replaces the roles `user` holds.
    pub fn set_user_roles(&self, user: UserId, roles: &[RoleName]) {
        let mut state = self.lock();
        for members in state.roles.values_mut() {
            members.remove(&user);
        }
        for role in roles {
            state.roles.entry(role.clone()).or_default().insert(user);
        }
    }

    /// Adds a template as given (ids chosen by the caller).
    pub fn put_template(&self, template: Template) {
        self.lock().templates.insert(template.id, template);
    }

    /// How many outbox events are not yet delivered.
    pub fn undelivered_callbacks(&self) -> usize {
        self.lock()
            .outbox
            .values()
            .filter(|row| row.delivered_at.is_none())
            .count()
    }
}

impl State {
    fn append_audit(
        &mut self,
        instance: &mut Instance,
        entries: Vec<NewAuditEntry>,
    ) -> Result<(), WorkflowError> {
        for entry in entries {
            let step_id = instance.audit_step_id(&entry)?;
            self.last_audit_id += 1;
            instance.audit.push(AuditEntry {
                id: self.last_audit_id,
                instance_id: instance.id,
                step_id,
                action: entry.action,
                actor_user_id: entry.actor_user_id,
                comment: entry.comment,
                at: entry.at,
            });
        }
        Ok(())
    }
}

fn active_key(event: &EventName, entity_type: &EntityType, entity_id: EntityId) -> ActiveKey {
    (event.clone(), entity_type.clone(), entity_id)
}

impl WorkflowRepository for MemoryStore {
    async fn active_template(&self, event: &EventName) -> Result<Option<Template>, WorkflowError> {
        Ok(self
            .lock()
            .templates
            .values()
            .find(|t| t.is_active && &t.event == event)
            .cloned())
    }

    async fn template(&self, id: TemplateId) -> Result<Template, WorkflowError> {
        self.lock()
            .templates
            .get(&id)
            .cloned()
            .ok_or_else(|| WorkflowError::not_found(format!("template {id}")))
    }

    async fn update_template(
        &self,
        id: TemplateId,
        update: TemplateUpdate,
    ) -> Result<Template, WorkflowError> {
        let mut state = self.lock();
        let current = state
            .templates
            .get(&id)
            .cloned()
            .ok_or_else(|| WorkflowError::not_found(format!("template {id}")))?;
        let in_use = state
            .instances
            .values()
            .any(|i| i.template_id == id && i.status.is_active());
        if in_use {
            return Err(WorkflowError::TemplateInUse { template: id.get() });
        }
        let mut next = current;
        if let Some(name) = update.name {
            next.name = name;
        }
        if let Some(is_active) = update.is_active {
            next.is_active = is_active;
        }
        if let Some(steps) = update.steps {
            next.steps = steps;
        }
        let clash = next.is_active
            && state
                .templates
                .values()
                .any(|t| t.id != id && t.is_active && t.event == next.event);
        if clash {
            return Err(WorkflowError::validation(
                "is_active",
                format!(
                    "another template is already active for event '{}'",
                    next.event
                ),
            ));
        }
        next.version += 1;
        state.templates.insert(id, next.clone());
        Ok(next)
    }

    async fn create_instance(&self, new: NewInstance) -> Result<Instance, WorkflowError> {
        let mut state = self.lock();
        // Same guard as PostgreSQL: the instance must copy the template as it is now.
        let current = state.templates.get(&new.template_id);
        if !current.is_some_and(|t| t.is_active && t.version == new.template_version) {
            return Err(WorkflowError::Unavailable(format!(
                "template {} changed while the instance was being created; retry",
                new.template_id
            )));
        }
        let key = active_key(&new.event, &new.entity_type, new.entity_id);
        if let Some(existing) = state.active.get(&key) {
            return Err(WorkflowError::InstanceAlreadyActive {
                existing: existing.get(),
            });
        }
        state.last_instance_id += 1;
        let id = InstanceId::new(state.last_instance_id).expect("ids count up from 1");
        let mut steps = Vec::with_capacity(new.steps.len());
        for step in new.steps {
            state.last_step_id += 1;
            let step_id = StepId::new(state.last_step_id).expect("ids count up from 1");
            state.step_owner.insert(step_id, id);
            steps.push(InstanceStep {
                id: step_id,
                step_order: step.step_order,
                name: step.name,
                approver: step.approver,
                eligible_user_ids: step.eligible_user_ids,
                status: step.status,
                acted_by_user_id: None,
                comment: None,
                acted_at: None,
                activated_at: step.activated_at,
            });
        }
        let mut instance = Instance {
            id,
            template_id: new.template_id,
            template_version: new.template_version,
            event: new.event,
            entity_type: new.entity_type,
            entity_id: new.entity_id,
            initiated_by: new.initiated_by,
            status: new.status,
            context: new.context,
            created_at: new.created_at,
            updated_at: new.created_at,
            completed_at: None,
            steps,
            audit: Vec::new(),
        };
        state.append_audit(&mut instance, new.audit)?;
        if instance.status.is_active() {
            state.active.insert(key, id);
        }
        state.instances.insert(id, instance.clone());
        Ok(instance)
    }

    async fn instance(&self, id: InstanceId) -> Result<Instance, WorkflowError> {
        self.lock()
            .instances
            .get(&id)
            .cloned()
            .ok_or_else(|| WorkflowError::not_found(format!("instance {id}")))
    }

    async fn decide(&self, step: StepId, decide: DecideFn) -> Result<Instance, WorkflowError> {
        let mut state = self.lock();
        let instance_id = *state
            .step_owner
            .get(&step)
            .ok_or_else(|| WorkflowError::not_found(format!("step {step}")))?;
        let mut instance = state
            .instances
            .get(&instance_id)
            .cloned()
            .ok_or_else(|| WorkflowError::Internal(format!("step {step} has no instance")))?;
        let decided = decide(&instance)?;
        machine::apply(&mut instance, &decided);
        state.append_audit(&mut instance, decided.audit)?;
        for event in decided.callbacks {
            state.last_outbox_id += 1;
            let id = state.last_outbox_id;
            let due_at = event.at;
            state.outbox.insert(
                id,
                OutboxRow {
                    item: OutboxItem {
                        id,
                        attempts: 0,
                        event,
                    },
                    due_at,
                    delivered_at: None,
                    last_error: None,
                },
            );
        }
        if !instance.status.is_active() {
            let key = active_key(&instance.event, &instance.entity_type, instance.entity_id);
            state.active.remove(&key);
        }
        state.instances.insert(instance_id, instance.clone());
        Ok(instance)
    }

    async fn pending_steps(
        &self,
        user: UserId,
        limit: u32,
    ) -> Result<Vec<PendingStep>, WorkflowError> {
        let state = self.lock();
        let mut found: Vec<PendingStep> = state
            .instances
            .values()
            .flat_map(|instance| {
                instance
                    .steps
                    .iter()
                    .filter(|s| {
                        s.status == StepStatus::AwaitingAction
                            && s.eligible_user_ids.contains(&user)
                    })
                    .map(move |s| PendingStep {
                        step_id: s.id,
                        step_order: s.step_order,
                        name: s.name.clone(),
                        approver: s.approver.clone(),
                        activated_at: s.activated_at,
                        instance_id: instance.id,
                        event: instance.event.clone(),
                        entity_type: instance.entity_type.clone(),
                        entity_id: instance.entity_id,
                    })
            })
            .collect();
        found.sort_by_key(|p| (p.activated_at, p.step_id));
        found.truncate(limit as usize);
        Ok(found)
    }

    async fn claim_callbacks(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<OutboxItem>, WorkflowError> {
        let mut state = self.lock();
        // Oldest due first, as PostgreSQL claims them.
        let mut due: Vec<(DateTime<Utc>, i64)> = state
            .outbox
            .values()
            .filter(|row| row.delivered_at.is_none() && row.due_at <= now)
            .map(|row| (row.due_at, row.item.id))
            .collect();
        due.sort_unstable();
        due.truncate(limit as usize);
        let mut claimed = Vec::with_capacity(due.len());
        for (_, id) in due {
            if let Some(row) = state.outbox.get_mut(&id) {
                row.due_at = lease_until;
                row.item.attempts += 1;
                claimed.push(row.item.clone());
            }
        }
        Ok(claimed)
    }

    async fn mark_callback_delivered(
        &self,
        id: i64,
        at: DateTime<Utc>,
    ) -> Result<(), WorkflowError> {
        if let Some(row) = self.lock().outbox.get_mut(&id) {
            row.delivered_at = Some(at);
            row.last_error = None;
        }
        Ok(())
    }

    async fn mark_callback_failed(
        &self,
        id: i64,
        error: String,
        retry_at: DateTime<Utc>,
    ) -> Result<(), WorkflowError> {
        if let Some(row) = self.lock().outbox.get_mut(&id) {
            row.due_at = retry_at;
            row.last_error = Some(error);
        }
        Ok(())
    }

    async fn health(&self) -> Result<(), WorkflowError> {
        Ok(())
    }
}

impl RoleResolver for MemoryStore {
    async fn user_exists(&self, user: UserId) -> Result<bool, WorkflowError> {
        Ok(self.lock().users.contains_key(&user))
    }

    async fn eligible_users(
        &self,
        approvers: &[Approver],
    ) -> Result<Vec<Vec<UserId>>, WorkflowError> {
        let state = self.lock();
        Ok(approvers
            .iter()
            .map(|approver| match approver {
                Approver::User { user_id } => {
                    if state.users.contains_key(user_id) {
                        vec![*user_id]
                    } else {
                        Vec::new()
                    }
                }
                Approver::Role { role } => state
                    .roles
                    .get(role)
                    .map(|members| members.iter().copied().collect())
                    .unwrap_or_default(),
            })
            .collect())
    }
}
