//! The workflow service: the use cases, driven through the ports.
//!
//! It parses nothing and stores nothing itself: inbound adapters hand it validated requests,
//! the state machine decides, and the repository's unit of work makes each use case atomic.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use tokio::sync::Notify;

use super::audit_chain;
use super::error::WorkflowError;
use super::machine;
use super::model::{
    AuditVerification, CancelRequest, Comment, DecisionRequest, Delegation, Done, InboxCursor,
    InboxPage, Instance, InstanceId, NewTemplate, Once, Readiness, ReadinessCheck, RoleName,
    StoreLoad, Template, TemplateFilter, TemplateId, TemplateStep, TemplateUpdate, TriggerRequest,
    User, UserId,
};
use super::ports::{
    Callbacks, Clock, ConditionEvaluator, NoCallbacks, RoleResolver, WorkflowRepository,
    WorkflowUseCases,
};

/// Largest inbox page.
pub const MAX_PENDING_LIMIT: u32 = 500;

/// Largest page of a search of instances.
pub const MAX_SEARCH_LIMIT: u32 = 500;

/// The approval workflow use cases, over the driven ports: the implementation of the driving
/// port [`WorkflowUseCases`]. The event adapters (`K`) are asked only whether they are ready:
/// events reach them through the outbox and the dispatcher.
pub struct WorkflowService<R, U, C, E, K = NoCallbacks> {
    repo: Arc<R>,
    roles: Arc<U>,
    clock: Arc<C>,
    conditions: Arc<E>,
    callbacks: Arc<K>,
    outbox_signal: Arc<Notify>,
}

impl<R, U, C, E> WorkflowService<R, U, C, E>
where
    R: WorkflowRepository,
    U: RoleResolver,
    C: Clock,
    E: ConditionEvaluator,
{
    /// A service over these adapters. `outbox_signal` is notified whenever a change has
    /// committed events, so that a dispatcher can deliver them without polling delay.
    pub fn new(
        repo: Arc<R>,
        roles: Arc<U>,
        clock: Arc<C>,
        conditions: Arc<E>,
        outbox_signal: Arc<Notify>,
    ) -> Self {
        Self {
            repo,
            roles,
            clock,
            conditions,
            callbacks: Arc::new(NoCallbacks),
            outbox_signal,
        }
    }
}

impl<R, U, C, E, K> WorkflowService<R, U, C, E, K>
where
    R: WorkflowRepository,
    U: RoleResolver,
    C: Clock,
    E: ConditionEvaluator,
    K: Callbacks,
{
    /// The same service, reporting the readiness of these event adapters.
    pub fn with_callbacks<L: Callbacks>(self, callbacks: Arc<L>) -> WorkflowService<R, U, C, E, L> {
        WorkflowService {
            repo: self.repo,
            roles: self.roles,
            clock: self.clock,
            conditions: self.conditions,
            callbacks,
            outbox_signal: self.outbox_signal,
        }
    }

    /// Refuses a step list with a condition that does not parse: 422 on `steps[i].when`,
    /// naming the step and saying why.
    fn check_conditions(&self, steps: &[TemplateStep]) -> Result<(), WorkflowError> {
        for (index, step) in steps.iter().enumerate() {
            if let Some(when) = &step.when {
                self.conditions.check(when).map_err(|why| {
                    WorkflowError::validation(
                        format!("steps[{index}].when"),
                        format!(
                            "is not a valid condition for step {} ('{}'): {why}",
                            step.step_order, step.name
                        ),
                    )
                })?;
            }
        }
        Ok(())
    }

    /// Wakes the dispatcher after a fresh change: nearly every one wrote events (an outcome,
    /// or the next approvers' `step.awaiting_action`), and waiting for the dispatcher's poll
    /// would add up to its interval to their delivery. A change that wrote none (a partial
    /// quorum approval) costs one empty round. A replayed answer wrote nothing.
    fn signal_events<T>(&self, done: &Done<T>) {
        if let Done::Fresh(_) = done {
            self.outbox_signal.notify_one();
        }
    }

    /// Whether each step of `template` applies to a trigger with `context`. Only a condition
    /// that is false skips its step: one that can't be evaluated on this context (a missing
    /// field, a wrong type) keeps it, so that a person looks rather than nobody.
    fn applies(&self, template: &Template, context: Option<&serde_json::Value>) -> Vec<bool> {
        // Borrowed, not cloned: most templates have no condition, and a context may be large.
        let null = serde_json::Value::Null;
        let context = context.unwrap_or(&null);
        template
            .steps
            .iter()
            .map(|step| match &step.when {
                None => true,
                Some(when) => match self.conditions.evaluate(when, context) {
                    Ok(holds) => holds,
                    Err(why) => {
                        tracing::info!(
                            template_id = %template.id,
                            step_order = step.step_order,
                            %why,
                            "step condition could not be evaluated; the step is kept"
                        );
                        true
                    }
                },
            })
            .collect()
    }
}

impl<R, U, C, E, K> WorkflowUseCases for WorkflowService<R, U, C, E, K>
where
    R: WorkflowRepository,
    U: RoleResolver,
    C: Clock,
    E: ConditionEvaluator,
    K: Callbacks,
{
    /// Starts a workflow for an entity: finds the event's active template, snapshots who may
    /// act on each step (the only moment roles are resolved), and stores the new instance.
    #[tracing::instrument(name = "trigger", skip_all, fields(event = %request.event, entity_id = %request.entity_id))]
    async fn trigger(
        &self,
        request: TriggerRequest,
        once: Option<Once<Instance>>,
    ) -> Result<Done<Instance>, WorkflowError> {
        // A retry is answered before anything is read: what it would read may have changed since
        // (the template deactivated, the initiator made inactive), and its answer must not.
        if let Some(once) = &once
            && let Some(kept) = self.repo.kept_answer(&once.key).await?
        {
            return once.replay(kept).map(Done::Replayed);
        }
        let template = self
            .repo
            .active_template(&request.event)
            .await?
            .ok_or_else(|| WorkflowError::NoActiveTemplate {
                event: request.event.to_string(),
            })?;
        // One read answers both "is it a user" and "may it act" (inactive users can't start).
        match self.roles.user_active(request.initiated_by).await? {
            None => {
                return Err(WorkflowError::UnknownUser {
                    user: request.initiated_by,
                    field: "initiated_by",
                });
            }
            Some(false) => {
                return Err(WorkflowError::UserInactive {
                    user: request.initiated_by,
                });
            }
            Some(true) => {}
        }
        let approvers: Vec<_> = template.steps.iter().map(|s| s.approver.clone()).collect();
        let snapshots = self.roles.eligible_users(&approvers).await?;
        let applies = self.applies(&template, request.context.as_ref());
        let new_instance = machine::trigger_with_conditions(
            &template,
            request,
            snapshots,
            &applies,
            self.clock.now(),
        )?;
        let done = self.repo.create_instance(new_instance, once).await?;
        self.signal_events(&done);
        Ok(done)
    }

    /// Approves or rejects a step. Eligibility is judged on the snapshot taken at trigger time,
    /// but an inactive actor is refused even when the snapshot holds it; an actor who is not
    /// eligible and not a user at all gets `UnknownUser` rather than `NotAnApprover`.
    #[tracing::instrument(name = "decide", skip_all, fields(step_id = %request.step_id, acted_by = %request.acted_by))]
    async fn decide(
        &self,
        request: DecisionRequest,
        once: Option<Once<Instance>>,
    ) -> Result<Done<Instance>, WorkflowError> {
        let step = request.step_id;
        let actor = request.acted_by;
        // The time is read under the row locks, so a decision never predates the state it
        // acts on (e.g. a step activated by a decision this one queued behind). The actor's
        // directory entry comes with the locked rows: the machine puts an inactive or unknown
        // actor in the refusal order (after an unknown step, before eligibility).
        let clock = Arc::clone(&self.clock);
        let done = self
            .repo
            .decide(
                step,
                actor,
                Box::new(move |instance, active, delegations| {
                    machine::decide_as(instance, &request, active, delegations, clock.now())
                }),
                once,
            )
            .await?;
        self.signal_events(&done);
        Ok(done)
    }

    /// Cancels an active instance on its initiator's behalf. As with a decision, an actor who
    /// may not act and is not a user at all gets `UnknownUser`; the directory is asked only then.
    #[tracing::instrument(name = "cancel", skip_all, fields(instance_id = %request.instance_id, acted_by = %request.acted_by))]
    async fn cancel(
        &self,
        request: CancelRequest,
        once: Option<Once<Instance>>,
    ) -> Result<Done<Instance>, WorkflowError> {
        let actor = request.acted_by;
        let instance = request.instance_id;
        // Read under the row locks, as for a decision.
        let clock = Arc::clone(&self.clock);
        let outcome = self
            .repo
            .decide_instance(
                instance,
                Box::new(move |locked| machine::cancel(locked, &request, clock.now())),
                once,
            )
            .await;
        match outcome {
            Ok(done) => {
                self.signal_events(&done);
                Ok(done)
            }
            Err(WorkflowError::NotTheInitiator { .. })
                if !self.roles.user_exists(actor).await? =>
            {
                Err(WorkflowError::UnknownUser {
                    user: actor,
                    field: "acted_by_user_id",
                })
            }
            Err(other) => Err(other),
        }
    }

    /// One instance with its steps and audit.
    async fn instance(&self, id: InstanceId) -> Result<Instance, WorkflowError> {
        self.repo.instance(id).await
    }

    /// The instance's audit trail checked against its hash chain.
    async fn verify_audit(&self, id: InstanceId) -> Result<AuditVerification, WorkflowError> {
        // The instance read is one snapshot, so a decision committing meanwhile is seen
        // whole or not at all: a trail is never judged half-written.
        let instance = self.repo.instance(id).await?;
        Ok(audit_chain::verify(&instance))
    }

    /// One template with its steps.
    async fn template(&self, id: TemplateId) -> Result<Template, WorkflowError> {
        self.repo.template(id).await
    }

    /// Creates a template at version 1.
    #[tracing::instrument(name = "create_template", skip_all, fields(event = %template.event))]
    async fn create_template(
        &self,
        template: NewTemplate,
        once: Option<Once<Template>>,
    ) -> Result<Done<Template>, WorkflowError> {
        machine::validate_new_template(&template)?;
        self.check_conditions(&template.steps)?;
        self.repo.create_template(template, once).await
    }

    /// Changes a template; refused while any active instance uses it.
    #[tracing::instrument(name = "update_template", skip(self, update))]
    async fn update_template(
        &self,
        id: TemplateId,
        update: TemplateUpdate,
    ) -> Result<Template, WorkflowError> {
        machine::validate_template_update(&update)?;
        self.check_conditions(update.steps.as_deref().unwrap_or_default())?;
        self.repo.update_template(id, update).await
    }

    /// The templates `filter` asks for, by id.
    async fn templates(&self, filter: TemplateFilter) -> Result<Vec<Template>, WorkflowError> {
        self.repo.templates(filter).await
    }

    /// Publishes a template's next version; allowed while instances use it, which keep the
    /// steps they copied.
    #[tracing::instrument(name = "publish_version", skip(self, update, once))]
    async fn publish_version(
        &self,
        id: TemplateId,
        update: TemplateUpdate,
        once: Option<Once<Template>>,
    ) -> Result<Done<Template>, WorkflowError> {
        machine::validate_template_update(&update)?;
        self.check_conditions(update.steps.as_deref().unwrap_or_default())?;
        self.repo.publish_version(id, update, once).await
    }

    /// A template as it was at `version`; versions count from 1, so no other can exist.
    async fn template_version(
        &self,
        id: TemplateId,
        version: i32,
    ) -> Result<Template, WorkflowError> {
        if version < 1 {
            return Err(WorkflowError::not_found(format!(
                "version {version} of template {id}"
            )));
        }
        self.repo.template_version(id, version).await
    }

    /// A page of the steps awaiting `user`, oldest first. As for a search, one more step than
    /// the page holds is asked for, so the last page has no `next`.
    async fn pending_steps(
        &self,
        user: UserId,
        limit: u32,
        after: Option<InboxCursor>,
    ) -> Result<InboxPage, WorkflowError> {
        if limit == 0 || limit > MAX_PENDING_LIMIT {
            return Err(WorkflowError::validation(
                "limit",
                format!("must be between 1 and {MAX_PENDING_LIMIT}"),
            ));
        }
        // One indexed read of who delegates to the user; the inbox query is today's when nobody
        // does.
        let delegators = self.roles.delegators_of(user, self.clock.now()).await?;
        let mut items = if delegators.is_empty() {
            self.repo.pending_steps(user, limit + 1, after).await?
        } else {
            self.repo
                .delegated_pending_steps(user, delegators, limit + 1, after)
                .await?
        };
        let next = if items.len() > limit as usize {
            items.truncate(limit as usize);
            items.last().and_then(InboxCursor::after)
        } else {
            None
        };
        Ok(InboxPage { items, next })
    }

    /// A page of the instances matching `filter`, newest first. One more instance than the page
    /// holds is asked for: whether it exists says whether there is a next page, so the last
    /// page has no `next` and never leads to an empty one.
    async fn search_instances(
        &self,
        filter: super::model::InstanceFilter,
        limit: u32,
        after: Option<InstanceId>,
    ) -> Result<super::model::InstancePage, WorkflowError> {
        if limit == 0 || limit > MAX_SEARCH_LIMIT {
            return Err(WorkflowError::validation(
                "limit",
                format!("must be between 1 and {MAX_SEARCH_LIMIT}"),
            ));
        }
        let mut items = self.repo.search_instances(filter, limit + 1, after).await?;
        let next = if items.len() > limit as usize {
            items.truncate(limit as usize);
            items.last().map(|last| last.id)
        } else {
            None
        };
        Ok(super::model::InstancePage { items, next })
    }

    /// Creates or replaces a user of the directory.
    #[tracing::instrument(name = "put_user", skip_all, fields(user_id = %user.id))]
    async fn put_user(&self, user: User) -> Result<bool, WorkflowError> {
        machine::validate_user(&user)?;
        self.roles.put_user(user).await
    }

    /// One user of the directory.
    async fn user(&self, id: UserId) -> Result<User, WorkflowError> {
        self.roles
            .user(id)
            .await?
            .ok_or_else(|| WorkflowError::not_found(format!("user {id}")))
    }

    /// The users holding `role`, or every user.
    async fn users(&self, role: Option<RoleName>) -> Result<Vec<User>, WorkflowError> {
        self.roles.users(role).await
    }

    /// Lets another user act for `user` until `until`: checks what needs no store (the time,
    /// the delegate is another user, the reason), then stores it with the directory's checks.
    #[tracing::instrument(name = "put_delegation", skip_all, fields(user_id = %user, to_user_id = %to_user))]
    async fn put_delegation(
        &self,
        user: UserId,
        to_user: UserId,
        until: DateTime<Utc>,
        reason: Option<Comment>,
    ) -> Result<Delegation, WorkflowError> {
        let now = self.clock.now();
        let delegation = Delegation {
            user_id: user,
            to_user_id: to_user,
            until,
            reason,
            created_at: now,
        };
        machine::validate_delegation(&delegation, now)?;
        self.roles.put_delegation(delegation.clone(), now).await?;
        Ok(delegation)
    }

    /// Ends the user's running delegation.
    #[tracing::instrument(name = "end_delegation", skip_all, fields(user_id = %user))]
    async fn end_delegation(&self, user: UserId) -> Result<(), WorkflowError> {
        if self.roles.end_delegation(user, self.clock.now()).await? {
            return Ok(());
        }
        // Which of the two is missing, for the message.
        if self.roles.user_exists(user).await? {
            Err(WorkflowError::not_found(format!(
                "a running delegation of user {user}"
            )))
        } else {
            Err(WorkflowError::not_found(format!("user {user}")))
        }
    }

    /// The user's running delegation, if any.
    async fn delegation(&self, user: UserId) -> Result<Option<Delegation>, WorkflowError> {
        self.roles.delegation(user, self.clock.now()).await
    }

    /// `Ok` when the store answers.
    async fn health(&self) -> Result<(), WorkflowError> {
        self.repo.health().await
    }

    /// The store's answer, then the event adapters' checks.
    async fn readiness(&self) -> Readiness {
        let database = ReadinessCheck {
            name: "database",
            outcome: self.repo.health().await.map_err(|e| e.to_string()),
        };
        let mut checks = vec![database];
        checks.extend(self.callbacks.ready().await);
        Readiness { checks }
    }

    /// The store's load, for the metrics.
    async fn store_load(&self) -> Result<StoreLoad, WorkflowError> {
        self.repo.load().await
    }
}

#[cfg(test)]
mod tests;
