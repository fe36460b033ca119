//! Driven adapter (outbound side of the hexagon): the in-memory `WorkflowRepository` and
//! `RoleResolver`, for the zero-setup mode and fast tests. Same contract as PostgreSQL: one
//! mutex makes each use case atomic, which gives the race its single winner; the
//! one-active-instance rule is an index; audit entries are only ever appended. Nothing survives
//! the process.
//!
//! A use case can't be interrupted half-way (a client hanging up drops the future, not the
//! update): the lock is a sync mutex and no use case awaits while holding it.

mod directory;
mod idempotency;
mod outbox;
mod search;
mod templates;
mod webhooks;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Mutex, MutexGuard};

use chrono::{DateTime, Utc};

use crate::domain::error::WorkflowError;
use crate::domain::model::{
    AuditEntry, Decided, Delegation, Done, EntityId, EntityType, EventName, FailedDelivery,
    IdempotencyKey, InboxCursor, Instance, InstanceId, InstanceStep, KeptAnswer, Lease,
    NewInstance, NewTemplate, Once, OutboxItem, OverdueStep, PendingStep, RoleName, StepId,
    StepStatus, StoreLoad, Template, TemplateFilter, TemplateId, TemplateUpdate, UserId,
};
use crate::domain::ports::{ActFn, DecideFn, OverdueFn, WorkflowRepository};
use crate::domain::{audit_chain, machine};

use outbox::OutboxRow;

type ActiveKey = (EventName, EntityType, EntityId);

#[derive(Default)]
struct State {
    users: BTreeMap<UserId, directory::Entry>,
    roles: BTreeMap<RoleName, BTreeSet<UserId>>,
    /// Each user's one delegation, by delegator (kept after it ends, until replaced or ended).
    delegations: BTreeMap<UserId, Delegation>,
    templates: BTreeMap<TemplateId, Template>,
    /// Every version of every template, as it was (see `templates`).
    template_versions: BTreeMap<(TemplateId, i32), Template>,
    instances: BTreeMap<InstanceId, Instance>,
    step_owner: HashMap<StepId, InstanceId>,
    active: HashMap<ActiveKey, InstanceId>,
    outbox: BTreeMap<i64, OutboxRow>,
    /// Idempotency keys with the answers kept for them.
    kept: HashMap<IdempotencyKey, KeptAnswer>,
    /// Never below the highest template id, including ids chosen by `put_template`.
    last_template_id: i64,
    last_instance_id: i64,
    last_step_id: i64,
    last_audit_id: i64,
    last_outbox_id: i64,
    /// The last event sequence number of each instance.
    last_sequence: HashMap<InstanceId, i64>,
    /// Webhook subscriptions and deliveries.
    hooks: webhooks::Hooks,
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
}

fn active_key(event: &EventName, entity_type: &EntityType, entity_id: EntityId) -> ActiveKey {
    (event.clone(), entity_type.clone(), entity_id)
}

impl State {
    fn create_instance(&mut self, new: NewInstance) -> Result<Instance, WorkflowError> {
        // Same guard as PostgreSQL: the instance must copy the template as it is now.
        let current = self.templates.get(&new.template_id);
        if !current.is_some_and(|t| t.is_active && t.version == new.template_version) {
            return Err(WorkflowError::Unavailable(format!(
                "template {} changed while the instance was being created; retry",
                new.template_id
            )));
        }
        let key = active_key(&new.event, &new.entity_type, new.entity_id);
        if let Some(existing) = self.active.get(&key) {
            return Err(WorkflowError::InstanceAlreadyActive {
                existing: existing.get(),
            });
        }
        // Steps get consecutive ids in order; the audit is resolved against them before
        // anything is written, so that a bad entry leaves no trace.
        let step_id_at = |index: usize| {
            StepId::new(self.last_step_id + 1 + index as i64).expect("ids count up from 1")
        };
        let step_ids: HashMap<i32, StepId> = new
            .steps
            .iter()
            .enumerate()
            .map(|(index, step)| (step.step_order, step_id_at(index)))
            .collect();
        let audit_step_ids = new
            .audit
            .iter()
            .map(|entry| {
                entry
                    .step_order
                    .map(|order| {
                        step_ids.get(&order).copied().ok_or_else(|| {
                            WorkflowError::internal(format!("audit names unknown step {order}"))
                        })
                    })
                    .transpose()
            })
            .collect::<Result<Vec<_>, _>>()?;
        let hashes = audit_chain::for_new_instance(&new)?;

        self.last_instance_id += 1;
        let id = InstanceId::new(self.last_instance_id).expect("ids count up from 1");
        let mut steps = Vec::with_capacity(new.steps.len());
        for step in new.steps {
            self.last_step_id += 1;
            let step_id = StepId::new(self.last_step_id).expect("ids count up from 1");
            self.step_owner.insert(step_id, id);
            steps.push(InstanceStep {
                id: step_id,
                step_order: step.step_order,
                name: step.name,
                approver: step.approver,
                eligible_user_ids: step.eligible_user_ids,
                quorum: step.quorum,
                approvals: Vec::new(),
                status: step.status,
                acted_by_user_id: None,
                comment: None,
                acted_at: None,
                activated_at: step.activated_at,
                due: step.due,
                due_at: step.due_at,
                overdue_at: None,
            });
        }
        let mut audit = Vec::with_capacity(new.audit.len());
        for ((entry, step_id), hash) in new.audit.into_iter().zip(audit_step_ids).zip(hashes) {
            self.last_audit_id += 1;
            audit.push(AuditEntry {
                id: self.last_audit_id,
                instance_id: id,
                step_id,
                action: entry.action,
                actor_user_id: entry.actor_user_id,
                on_behalf_of: None,
                comment: entry.comment,
                at: entry.at,
                hash,
            });
        }
        let instance = Instance {
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
            completed_at: new.completed_at,
            steps,
            audit,
        };
        if instance.status.is_active() {
            self.active.insert(key, id);
        }
        self.enqueue_callbacks(machine::trigger_events(&instance));
        self.instances.insert(id, instance.clone());
        Ok(instance)
    }

    fn decide(
        &mut self,
        step: StepId,
        actor: UserId,
        decide: ActFn,
    ) -> Result<Instance, WorkflowError> {
        let instance_id = *self
            .step_owner
            .get(&step)
            .ok_or_else(|| WorkflowError::not_found(format!("step {step}")))?;
        if !self.instances.contains_key(&instance_id) {
            return Err(WorkflowError::internal(format!(
                "step {step} has no instance"
            )));
        }
        let active = self.users.get(&actor).map(|entry| entry.active);
        // As the PostgreSQL store: the delegations only when the actor is not eligible.
        let eligible = self.instances[&instance_id]
            .steps
            .iter()
            .any(|s| s.id == step && s.eligible_user_ids.contains(&actor));
        let delegations = if eligible {
            Vec::new()
        } else {
            self.delegations_to(actor)
        };
        self.decide_instance(
            instance_id,
            Box::new(move |i| decide(i, active, &delegations)),
        )
    }

    /// Runs `decide` on the instance and stores what it lists (a decision or a cancellation).
    fn decide_instance(
        &mut self,
        instance_id: InstanceId,
        decide: DecideFn,
    ) -> Result<Instance, WorkflowError> {
        let stored = self
            .instances
            .get(&instance_id)
            .ok_or_else(|| WorkflowError::not_found(format!("instance {instance_id}")))?;
        let decided = decide(stored)?;
        // Chained to the last stored entry; the whole state is locked meanwhile.
        let hashes = audit_chain::for_decision(stored.audit.last().map(|e| e.hash), &decided)?;
        let Decided {
            mut instance,
            audit: new_audit,
            callbacks,
            ..
        } = decided;
        if instance.id != instance_id {
            // Storing it would file the instance under the wrong key.
            return Err(WorkflowError::internal(format!(
                "the decision on instance {instance_id} returned instance {}",
                instance.id
            )));
        }
        let mut audit = stored.audit.clone();
        let key = active_key(&stored.event, &stored.entity_type, stored.entity_id);

        for (entry, hash) in new_audit.into_iter().zip(hashes) {
            self.last_audit_id += 1;
            audit.push(AuditEntry {
                id: self.last_audit_id,
                instance_id,
                step_id: entry.step_id,
                action: entry.action,
                actor_user_id: entry.actor_user_id,
                on_behalf_of: entry.on_behalf_of,
                comment: entry.comment,
                at: entry.at,
                hash,
            });
        }
        instance.audit = audit;
        self.enqueue_callbacks(callbacks);
        if !instance.status.is_active() {
            self.active.remove(&key);
        }
        self.instances.insert(instance_id, instance.clone());
        Ok(instance)
    }

    /// As PostgreSQL's partial index holds them: awaiting, due by `now`, not handled.
    fn overdue_steps(&self, now: DateTime<Utc>, limit: u32) -> Vec<OverdueStep> {
        let mut found: Vec<(DateTime<Utc>, OverdueStep)> = self
            .instances
            .values()
            .flat_map(|instance| {
                instance.steps.iter().filter_map(move |s| {
                    let due_at = s.due_at?;
                    let waiting = s.status == StepStatus::AwaitingAction && s.overdue_at.is_none();
                    (waiting && due_at <= now).then(|| {
                        let step = OverdueStep {
                            instance_id: instance.id,
                            step_id: s.id,
                            escalate_to: s
                                .due
                                .as_ref()
                                .and_then(|rule| rule.on_overdue.escalate_to().cloned()),
                        };
                        (due_at, step)
                    })
                })
            })
            .collect();
        found.sort_by_key(|(due_at, step)| (*due_at, step.step_id));
        found.truncate(limit as usize);
        found.into_iter().map(|(_, step)| step).collect()
    }

    /// Runs `decide` on the instance and stores its change, if any. One mutex holds the whole
    /// state, so no other unit of work can hold the instance meanwhile.
    fn handle_overdue(
        &mut self,
        step: &OverdueStep,
        decide: OverdueFn,
    ) -> Result<Option<Instance>, WorkflowError> {
        let stored = self
            .instances
            .get(&step.instance_id)
            .ok_or_else(|| WorkflowError::not_found(format!("instance {}", step.instance_id)))?;
        let Some(decided) = decide(stored)? else {
            return Ok(None);
        };
        self.decide_instance(step.instance_id, Box::new(move |_| Ok(decided)))
            .map(Some)
    }

    fn pending_steps(
        &self,
        user: UserId,
        delegators: &[UserId],
        limit: u32,
        after: Option<InboxCursor>,
    ) -> Vec<PendingStep> {
        let mut found: Vec<PendingStep> = self
            .instances
            .values()
            .flat_map(|instance| {
                instance
                    .steps
                    .iter()
                    .filter(|s| s.status == StepStatus::AwaitingAction)
                    .filter_map(move |s| {
                        // A quorum step's approver has done their part.
                        let awaits = |who: &UserId| {
                            s.eligible_user_ids.contains(who)
                                && !s.approvals.iter().any(|a| a.user_id == *who)
                        };
                        let on_behalf_of = if awaits(&user) {
                            None
                        } else if s.eligible_user_ids.contains(&user) {
                            // An eligible delegate acts as themself, and has.
                            return None;
                        } else {
                            Some(*delegators.iter().filter(|d| awaits(d)).min()?)
                        };
                        Some(PendingStep {
                            step_id: s.id,
                            step_order: s.step_order,
                            name: s.name.clone(),
                            approver: s.approver.clone(),
                            activated_at: s.activated_at,
                            instance_id: instance.id,
                            event: instance.event.clone(),
                            entity_type: instance.entity_type.clone(),
                            entity_id: instance.entity_id,
                            on_behalf_of,
                        })
                    })
            })
            .filter(|p| after.is_none_or(|cursor| cursor.precedes(p)))
            .collect();
        found.sort_by_key(|p| (p.activated_at, p.step_id));
        found.truncate(limit as usize);
        found
    }
}

impl WorkflowRepository for MemoryStore {
    async fn active_template(&self, event: &EventName) -> Result<Option<Template>, WorkflowError> {
        Ok(self.lock().active_template(event))
    }

    async fn template(&self, id: TemplateId) -> Result<Template, WorkflowError> {
        self.lock()
            .templates
            .get(&id)
            .cloned()
            .ok_or_else(|| WorkflowError::not_found(format!("template {id}")))
    }

    async fn create_template(
        &self,
        template: NewTemplate,
        once: Option<Once<Template>>,
    ) -> Result<Done<Template>, WorkflowError> {
        self.lock()
            .once(once, |state| state.create_template(template))
    }

    async fn update_template(
        &self,
        id: TemplateId,
        update: TemplateUpdate,
    ) -> Result<Template, WorkflowError> {
        self.lock().change_template(id, update, true)
    }

    async fn templates(&self, filter: TemplateFilter) -> Result<Vec<Template>, WorkflowError> {
        Ok(self.lock().list_templates(&filter))
    }

    async fn publish_version(
        &self,
        id: TemplateId,
        update: TemplateUpdate,
        once: Option<Once<Template>>,
    ) -> Result<Done<Template>, WorkflowError> {
        self.lock()
            .once(once, |state| state.change_template(id, update, false))
    }

    async fn template_version(
        &self,
        id: TemplateId,
        version: i32,
    ) -> Result<Template, WorkflowError> {
        self.lock().template_version(id, version)
    }

    async fn create_instance(
        &self,
        new: NewInstance,
        once: Option<Once<Instance>>,
    ) -> Result<Done<Instance>, WorkflowError> {
        self.lock().once(once, |state| state.create_instance(new))
    }

    async fn instance(&self, id: InstanceId) -> Result<Instance, WorkflowError> {
        self.lock()
            .instances
            .get(&id)
            .cloned()
            .ok_or_else(|| WorkflowError::not_found(format!("instance {id}")))
    }

    async fn decide(
        &self,
        step: StepId,
        actor: UserId,
        decide: ActFn,
        once: Option<Once<Instance>>,
    ) -> Result<Done<Instance>, WorkflowError> {
        self.lock()
            .once(once, |state| state.decide(step, actor, decide))
    }

    async fn decide_instance(
        &self,
        instance: InstanceId,
        decide: DecideFn,
        once: Option<Once<Instance>>,
    ) -> Result<Done<Instance>, WorkflowError> {
        self.lock()
            .once(once, |state| state.decide_instance(instance, decide))
    }

    async fn overdue_steps(
        &self,
        now: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<OverdueStep>, WorkflowError> {
        Ok(self.lock().overdue_steps(now, limit))
    }

    async fn handle_overdue(
        &self,
        step: OverdueStep,
        decide: OverdueFn,
    ) -> Result<Option<Instance>, WorkflowError> {
        self.lock().handle_overdue(&step, decide)
    }

    async fn kept_answer(&self, key: &IdempotencyKey) -> Result<Option<KeptAnswer>, WorkflowError> {
        Ok(MemoryStore::kept_answer(self, key))
    }

    async fn purge_kept_answers(&self, before: DateTime<Utc>) -> Result<u64, WorkflowError> {
        Ok(MemoryStore::purge_kept_answers(self, before))
    }

    async fn pending_steps(
        &self,
        user: UserId,
        limit: u32,
        after: Option<InboxCursor>,
    ) -> Result<Vec<PendingStep>, WorkflowError> {
        Ok(self.lock().pending_steps(user, &[], limit, after))
    }

    async fn delegated_pending_steps(
        &self,
        user: UserId,
        delegators: Vec<UserId>,
        limit: u32,
        after: Option<InboxCursor>,
    ) -> Result<Vec<PendingStep>, WorkflowError> {
        Ok(self.lock().pending_steps(user, &delegators, limit, after))
    }

    async fn search_instances(
        &self,
        filter: crate::domain::model::InstanceFilter,
        limit: u32,
        after: Option<InstanceId>,
    ) -> Result<Vec<Instance>, WorkflowError> {
        Ok(self.lock().search_instances(&filter, limit, after))
    }

    async fn claim_callbacks(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: u32,
        due_since: Option<DateTime<Utc>>,
    ) -> Result<Vec<OutboxItem>, WorkflowError> {
        Ok(self
            .lock()
            .claim_callbacks(now, lease_until, limit, due_since))
    }

    async fn mark_callbacks_delivered(
        &self,
        leases: Vec<Lease>,
        now: DateTime<Utc>,
    ) -> Result<u64, WorkflowError> {
        Ok(self.lock().mark_callbacks_delivered(&leases, now))
    }

    async fn mark_callbacks_failed(
        &self,
        failures: Vec<FailedDelivery>,
        now: DateTime<Utc>,
    ) -> Result<u64, WorkflowError> {
        Ok(self.lock().mark_callbacks_failed(failures, now))
    }

    async fn health(&self) -> Result<(), WorkflowError> {
        Ok(())
    }

    async fn load(&self) -> Result<StoreLoad, WorkflowError> {
        Ok(self.lock().outbox_load())
    }
}
