//! Outbound adapter, PostgreSQL: the `WorkflowRepository` port, each method routed to the
//! module of the aggregate it touches.

use chrono::{DateTime, Utc};
use diesel_async::RunQueryDsl;

use super::{
    PgStore, decisions, idempotency, inbox, instances, outbox, template_versions, templates,
};
use crate::domain::WorkflowError;
use crate::domain::model::{
    Done, EventName, FailedDelivery, IdempotencyKey, InboxCursor, Instance, InstanceId, KeptAnswer,
    Lease, NewInstance, NewTemplate, Once, OutboxItem, OverdueStep, PendingStep, StepId, StoreLoad,
    Template, TemplateFilter, TemplateId, TemplateUpdate, UserId,
};
use crate::domain::ports::{ActFn, DecideFn, OverdueFn, WorkflowRepository};

impl WorkflowRepository for PgStore {
    async fn active_template(&self, event: &EventName) -> Result<Option<Template>, WorkflowError> {
        templates::active_template(self, event).await
    }

    async fn template(&self, id: TemplateId) -> Result<Template, WorkflowError> {
        templates::template(self, id).await
    }

    async fn create_template(
        &self,
        template: NewTemplate,
        once: Option<Once<Template>>,
    ) -> Result<Done<Template>, WorkflowError> {
        templates::create_template(self, template, once).await
    }

    async fn update_template(
        &self,
        id: TemplateId,
        update: TemplateUpdate,
    ) -> Result<Template, WorkflowError> {
        templates::update_template(self, id, update).await
    }

    async fn templates(&self, filter: TemplateFilter) -> Result<Vec<Template>, WorkflowError> {
        templates::templates(self, filter).await
    }

    async fn publish_version(
        &self,
        id: TemplateId,
        update: TemplateUpdate,
        once: Option<Once<Template>>,
    ) -> Result<Done<Template>, WorkflowError> {
        template_versions::publish_version(self, id, update, once).await
    }

    async fn template_version(
        &self,
        id: TemplateId,
        version: i32,
    ) -> Result<Template, WorkflowError> {
        template_versions::template_version(self, id, version).await
    }

    async fn create_instance(
        &self,
        instance: NewInstance,
        once: Option<Once<Instance>>,
    ) -> Result<Done<Instance>, WorkflowError> {
        instances::create_instance(self, instance, once).await
    }

    async fn instance(&self, id: InstanceId) -> Result<Instance, WorkflowError> {
        instances::instance(self, id).await
    }

    async fn decide(
        &self,
        step: StepId,
        actor: UserId,
        decide: ActFn,
        once: Option<Once<Instance>>,
    ) -> Result<Done<Instance>, WorkflowError> {
        decisions::decide(self, step, actor, decide, once).await
    }

    async fn decide_instance(
        &self,
        instance: InstanceId,
        decide: DecideFn,
        once: Option<Once<Instance>>,
    ) -> Result<Done<Instance>, WorkflowError> {
        decisions::decide_instance(self, instance, decide, once).await
    }

    async fn overdue_steps(
        &self,
        now: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<OverdueStep>, WorkflowError> {
        decisions::overdue_steps(self, now, limit).await
    }

    async fn handle_overdue(
        &self,
        step: OverdueStep,
        decide: OverdueFn,
    ) -> Result<Option<Instance>, WorkflowError> {
        decisions::handle_overdue(self, step, decide).await
    }

    async fn kept_answer(&self, key: &IdempotencyKey) -> Result<Option<KeptAnswer>, WorkflowError> {
        idempotency::kept_answer(self, key).await
    }

    async fn purge_kept_answers(&self, before: DateTime<Utc>) -> Result<u64, WorkflowError> {
        idempotency::purge(self, before).await
    }

    async fn pending_steps(
        &self,
        user: UserId,
        limit: u32,
        after: Option<InboxCursor>,
    ) -> Result<Vec<PendingStep>, WorkflowError> {
        inbox::pending_steps(self, user, limit, after).await
    }

    async fn delegated_pending_steps(
        &self,
        user: UserId,
        delegators: Vec<UserId>,
        limit: u32,
        after: Option<InboxCursor>,
    ) -> Result<Vec<PendingStep>, WorkflowError> {
        inbox::delegated_pending_steps(self, user, delegators, limit, after).await
    }

    async fn search_instances(
        &self,
        filter: crate::domain::model::InstanceFilter,
        limit: u32,
        after: Option<InstanceId>,
    ) -> Result<Vec<Instance>, WorkflowError> {
        super::search::search_instances(self, filter, limit, after).await
    }

    async fn claim_callbacks(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: u32,
        due_since: Option<DateTime<Utc>>,
    ) -> Result<Vec<OutboxItem>, WorkflowError> {
        outbox::claim_callbacks(self, now, lease_until, limit, due_since).await
    }

    async fn mark_callbacks_delivered(
        &self,
        leases: Vec<Lease>,
        now: DateTime<Utc>,
    ) -> Result<u64, WorkflowError> {
        outbox::mark_callbacks_delivered(self, leases, now).await
    }

    async fn mark_callbacks_failed(
        &self,
        failures: Vec<FailedDelivery>,
        now: DateTime<Utc>,
    ) -> Result<u64, WorkflowError> {
        outbox::mark_callbacks_failed(self, failures, now).await
    }

    async fn load(&self) -> Result<StoreLoad, WorkflowError> {
        outbox::load(self).await
    }

    async fn health(&self) -> Result<(), WorkflowError> {
        self.with_conn(async |conn| {
            diesel::sql_query("SELECT 1").execute(conn).await?;
            Ok(())
        })
        .await
    }
}
