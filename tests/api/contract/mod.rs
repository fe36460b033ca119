//! The repository contract (the driven ports `WorkflowRepository` and `RoleResolver`), run
//! against both adapters.
//!
//! Each case is written once, generic over [`ContractStore`], and `contract_tests!` instantiates
//! it for the in-memory store and for PostgreSQL (a fresh database per test), so the two adapters
//! can't drift apart. The cases drive the ports directly: the pure state machine builds what the
//! service would hand the repository (`machine::trigger`, `machine::decide`), and nothing goes
//! through HTTP or the service. Times are whole microseconds, the precision PostgreSQL stores.
//! One file per use case; the shared steps (trigger, approve, reject, audit checks) are here.

use approvals::domain::model::Done;
use std::future::Future;

use approvals::demo::demo_data;
use approvals::domain::WorkflowError;
use approvals::domain::machine;
use approvals::domain::model::{
    Approver, AuditAction, CallbackKind, Comment, DecisionRequest, Instance, NewInstance,
    OutboxItem, PendingStep, RoleName, StepId, Template, TriggerRequest, UserId, Verdict,
};
use approvals::domain::ports::{ActFn, RoleResolver, WorkflowRepository};
use approvals::outbound::memory::MemoryStore;
use approvals::outbound::postgres::PgStore;
use chrono::{DateTime, TimeDelta, Utc};

use crate::fixtures::{demo_template, far_future, request, uid};

/// What the suite needs from a store beyond the ports: the directory and template set-up that
/// only fixtures do (the test-only helpers behind the `test-support` feature).
pub trait ContractStore: WorkflowRepository + RoleResolver {
    /// Loads the demo's users, roles and templates into a fresh store, without the sample
    /// instance.
    fn load_demo(&self) -> impl Future<Output = ()> + Send;
    /// Adds a user.
    fn add_user(&self, id: UserId, name: &str) -> impl Future<Output = ()> + Send;
    /// Replaces the roles `user` holds.
    fn set_user_roles(&self, user: UserId, roles: &[RoleName]) -> impl Future<Output = ()> + Send;
    /// Stores a template as given, id included.
    fn put_template(&self, template: Template) -> impl Future<Output = ()> + Send;
}

/// The demo's directory and templates, through the ports a fresh store must serve: users with
/// `put_user`, templates with `create_template`, which numbers them 1, 2, 3.
async fn load_users_and_templates<S: WorkflowRepository + RoleResolver>(store: &S) {
    let demo = demo_data();
    for user in demo.users {
        assert!(
            store.put_user(user).await.expect("user stored"),
            "a new user is created"
        );
    }
    for (index, new) in demo.templates.into_iter().enumerate() {
        let created = store
            .create_template(new, None)
            .await
            .and_then(Done::unkeyed)
            .expect("template created");
        assert_eq!(created, demo_template(index));
    }
}

impl ContractStore for MemoryStore {
    async fn load_demo(&self) {
        load_users_and_templates(self).await;
    }

    async fn add_user(&self, id: UserId, name: &str) {
        MemoryStore::add_user(self, id, name);
    }

    async fn set_user_roles(&self, user: UserId, roles: &[RoleName]) {
        MemoryStore::set_user_roles(self, user, roles);
    }

    async fn put_template(&self, template: Template) {
        MemoryStore::put_template(self, template);
    }
}

impl ContractStore for PgStore {
    async fn load_demo(&self) {
        load_users_and_templates(self).await;
        // After the users: commissions refer to their agent.
        PgStore::load_property_records(self, &demo_data().properties)
            .await
            .expect("property records load");
    }

    async fn add_user(&self, id: UserId, name: &str) {
        PgStore::add_user(self, id, name).await.expect("user added");
    }

    async fn set_user_roles(&self, user: UserId, roles: &[RoleName]) {
        PgStore::set_user_roles(self, user, roles)
            .await
            .expect("roles set");
    }

    async fn put_template(&self, template: Template) {
        PgStore::put_template(self, &template)
            .await
            .expect("template stored");
    }
}

/// Generates, for each case, a test on the in-memory store and one on a fresh PostgreSQL
/// database, both preloaded with the demo's users, roles and templates.
macro_rules! contract_tests {
    ($($case:ident => $memory:ident, $postgres:ident;)+) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $memory() {
                crate::helpers::init_logging();
                let store = std::sync::Arc::new(approvals::outbound::memory::MemoryStore::new());
                crate::contract::ContractStore::load_demo(&*store).await;
                $case(store).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $postgres() {
                let db = crate::helpers::TestDb::create().await;
                let store = db.store().await;
                crate::contract::ContractStore::load_demo(&*store).await;
                $case(store).await;
                drop(db);
            }
        )+
    };
}

mod audit;
mod cancel;
mod conditions;
mod decide;
mod delegation;
mod directory;
mod idempotency;
mod inbox;
mod outbox;
mod overdue;
mod quorum;
mod race;
mod search;
mod template_versions;
mod templates;
mod trigger;
mod users;
mod webhooks;

/// What the service would store for `request` now: the active template, snapshots taken now.
async fn new_instance<S: ContractStore>(
    store: &S,
    request: TriggerRequest,
    now: DateTime<Utc>,
) -> NewInstance {
    let template = store
        .active_template(&request.event)
        .await
        .unwrap()
        .expect("an active template for the event");
    let approvers: Vec<Approver> = template.steps.iter().map(|s| s.approver.clone()).collect();
    let snapshots = store.eligible_users(&approvers).await.unwrap();
    machine::trigger(&template, request, snapshots, now).unwrap()
}

/// Triggers `event_name` for an entity, without context.
async fn start<S: ContractStore>(
    store: &S,
    event_name: &str,
    kind: &str,
    entity_id: i64,
    by: i64,
    now: DateTime<Utc>,
) -> Result<Instance, WorkflowError> {
    let new = new_instance(store, request(event_name, kind, entity_id, by, None), now).await;
    store
        .create_instance(new, None)
        .await
        .and_then(Done::unkeyed)
}

/// The closure the service hands the repository: the machine's decision on the locked state.
fn decision(step: StepId, by: i64, verdict: Verdict, now: DateTime<Utc>) -> ActFn {
    let request = DecisionRequest {
        step_id: step,
        acted_by: uid(by),
        verdict,
    };
    Box::new(move |instance: &Instance, _active, _| machine::decide(instance, &request, now))
}

async fn approve<S: ContractStore>(
    store: &S,
    step: StepId,
    by: i64,
    comment: Option<&str>,
    now: DateTime<Utc>,
) -> Result<Instance, WorkflowError> {
    let verdict = Verdict::Approve {
        comment: comment.map(|c| Comment::new(c).unwrap()),
    };
    store
        .decide(step, uid(by), decision(step, by, verdict, now), None)
        .await
        .and_then(Done::unkeyed)
}

async fn reject<S: ContractStore>(
    store: &S,
    step: StepId,
    by: i64,
    comment: &str,
    now: DateTime<Utc>,
) -> Result<Instance, WorkflowError> {
    let verdict = Verdict::Reject {
        comment: Comment::new(comment).unwrap(),
    };
    store
        .decide(step, uid(by), decision(step, by, verdict, now), None)
        .await
        .and_then(Done::unkeyed)
}

/// The audit log as (action, step, actor) triples.
fn audit_summary(instance: &Instance) -> Vec<(AuditAction, Option<StepId>, Option<UserId>)> {
    instance
        .audit
        .iter()
        .map(|a| (a.action, a.step_id, a.actor_user_id))
        .collect()
}

/// Checks what every stored audit log must satisfy: ids strictly increasing, all of this instance.
fn assert_audit_well_formed(instance: &Instance) {
    for pair in instance.audit.windows(2) {
        assert!(
            pair[0].id < pair[1].id,
            "audit ids must increase: {:?}",
            instance.audit
        );
    }
    for entry in &instance.audit {
        assert_eq!(entry.instance_id, instance.id, "{entry:?}");
    }
}

/// The inbox line for step `order` (1-based) of `instance`, as it stands in `instance`.
fn pending_line(instance: &Instance, order: usize) -> PendingStep {
    let step = &instance.steps[order - 1];
    PendingStep {
        step_id: step.id,
        step_order: step.step_order,
        name: step.name.clone(),
        approver: step.approver.clone(),
        activated_at: step.activated_at,
        instance_id: instance.id,
        event: instance.event.clone(),
        entity_type: instance.entity_type.clone(),
        entity_id: instance.entity_id,
        on_behalf_of: None,
    }
}

/// Asserts that no outcome (`instance.*` event) is stored yet. The approver notifications
/// (`step.*` events) it finds stay leased until after `far_future()`, out of later claims' way.
async fn assert_no_callbacks<S: ContractStore>(store: &S) {
    let claimed = store
        .claim_callbacks(
            far_future(),
            far_future() + TimeDelta::seconds(1),
            100,
            None,
        )
        .await
        .unwrap();
    let outcomes: Vec<_> = claimed
        .iter()
        .filter(|item| item.event.step.is_none())
        .collect();
    assert_eq!(
        outcomes,
        Vec::<&OutboxItem>::new(),
        "no outcome event may be stored yet"
    );
    for item in &claimed {
        assert_eq!(
            item.event.kind,
            CallbackKind::StepAwaitingAction,
            "{item:?}"
        );
    }
}

fn step_ids(instance: &Instance) -> (StepId, StepId) {
    assert_eq!(instance.steps.len(), 2, "{instance:?}");
    (instance.steps[0].id, instance.steps[1].id)
}
