//! The workflow service: the use cases, driven through the ports.
//!
//! It parses nothing and stores nothing itself: inbound adapters hand it validated requests,
//! the state machine decides, and the repository's unit of work makes each use case atomic.

use std::sync::Arc;

use tokio::sync::Notify;

use super::error::WorkflowError;
use super::machine;
use super::model::{
    DecisionRequest, Instance, InstanceId, PendingStep, Template, TemplateId, TemplateUpdate,
    TriggerRequest, UserId,
};
use super::ports::{Clock, RoleResolver, WorkflowRepository};

/// Largest inbox page.
pub const MAX_PENDING_LIMIT: u32 = 500;

/// The approval workflow use cases.
pub struct WorkflowService<R, U, C> {
    repo: Arc<R>,
    roles: Arc<U>,
    clock: Arc<C>,
    outbox_signal: Arc<Notify>,
}

impl<R, U, C> WorkflowService<R, U, C>
where
    R: WorkflowRepository,
    U: RoleResolver,
    C: Clock,
{
    /// A service over these adapters. `outbox_signal` is notified whenever a decision has
    /// committed callback events, so that a dispatcher can deliver them without polling delay.
    pub fn new(repo: Arc<R>, roles: Arc<U>, clock: Arc<C>, outbox_signal: Arc<Notify>) -> Self {
        Self {
            repo,
            roles,
            clock,
            outbox_signal,
        }
    }

    /// Starts a workflow for an entity: finds the event's active template, snapshots who may
    /// act on each step (the only moment roles are resolved), and stores the new instance.
    pub async fn trigger(&self, request: TriggerRequest) -> Result<Instance, WorkflowError> {
        let template = self
            .repo
            .active_template(&request.event)
            .await?
            .ok_or_else(|| WorkflowError::NoActiveTemplate {
                event: request.event.to_string(),
            })?;
        if !self.roles.user_exists(request.initiated_by).await? {
            return Err(WorkflowError::UnknownUser {
                user: request.initiated_by,
                field: "initiated_by",
            });
        }
        let approvers: Vec<_> = template.steps.iter().map(|s| s.approver.clone()).collect();
        let snapshots = self.roles.eligible_users(&approvers).await?;
        let new_instance = machine::trigger(&template, request, snapshots, self.clock.now())?;
        // Spawned so that a client hanging up can't cancel the write half-way.
        let repo = Arc::clone(&self.repo);
        tokio::spawn(async move { repo.create_instance(new_instance).await })
            .await
            .map_err(|e| WorkflowError::Internal(format!("trigger task failed: {e}")))?
    }

    /// Approves or rejects a step. Eligibility is judged on the snapshot taken at trigger time;
    /// an actor who is not eligible and not a user at all gets `UnknownUser` rather than
    /// `NotAnApprover`.
    pub async fn decide(&self, request: DecisionRequest) -> Result<Instance, WorkflowError> {
        let actor = request.acted_by;
        let step = request.step_id;
        let repo = Arc::clone(&self.repo);
        // The time is read under the row locks, so a decision never predates the state it
        // acts on (e.g. a step activated by a decision this one queued behind).
        let clock = Arc::clone(&self.clock);
        let outcome = tokio::spawn(async move {
            repo.decide(
                step,
                Box::new(move |instance| machine::decide(instance, &request, clock.now())),
            )
            .await
        })
        .await
        .map_err(|e| WorkflowError::Internal(format!("decision task failed: {e}")))?;
        match outcome {
            Ok(instance) => {
                if !instance.status.is_active() {
                    self.outbox_signal.notify_one();
                }
                Ok(instance)
            }
            Err(WorkflowError::NotAnApprover { .. }) if !self.roles.user_exists(actor).await? => {
                Err(WorkflowError::UnknownUser {
                    user: actor,
                    field: "acted_by_user_id",
                })
            }
            Err(other) => Err(other),
        }
    }

    /// One instance with its steps and audit.
    pub async fn instance(&self, id: InstanceId) -> Result<Instance, WorkflowError> {
        self.repo.instance(id).await
    }

    /// One template with its steps.
    pub async fn template(&self, id: TemplateId) -> Result<Template, WorkflowError> {
        self.repo.template(id).await
    }

    /// Changes a template; refused while any active instance uses it.
    pub async fn update_template(
        &self,
        id: TemplateId,
        update: TemplateUpdate,
    ) -> Result<Template, WorkflowError> {
        machine::validate_template_update(&update)?;
        self.repo.update_template(id, update).await
    }

    /// The steps awaiting `user`, oldest first.
    pub async fn pending_steps(
        &self,
        user: UserId,
        limit: u32,
    ) -> Result<Vec<PendingStep>, WorkflowError> {
        if limit == 0 || limit > MAX_PENDING_LIMIT {
            return Err(WorkflowError::validation(
                "limit",
                format!("must be between 1 and {MAX_PENDING_LIMIT}"),
            ));
        }
        self.repo.pending_steps(user, limit).await
    }

    /// `Ok` when the store answers.
    pub async fn health(&self) -> Result<(), WorkflowError> {
        self.repo.health().await
    }
}

#[cfg(test)]
mod tests;
