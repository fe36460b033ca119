//! The repository contract, run against both adapters.
//!
//! Each case is written once, generic over [`ContractStore`], and `contract_tests!` instantiates
//! it for the in-memory store and for PostgreSQL (a fresh database per test), so the two adapters
//! can't drift apart. The cases drive the ports directly: the pure state machine builds what the
//! service would hand the repository (`machine::trigger`, `machine::decide`), and nothing goes
//! through HTTP. Times are whole microseconds, the precision PostgreSQL stores.

use std::collections::BTreeSet;
use std::future::Future;
use std::sync::Arc;

use approvals::demo::demo_data;
use approvals::domain::WorkflowError;
use approvals::domain::machine;
use approvals::domain::model::{
    Approver, AuditAction, AuditEntry, CallbackEvent, CallbackKind, Comment, DecisionRequest,
    EntityId, EntityType, EventName, Instance, InstanceId, InstanceStatus, NewInstance,
    PendingStep, RoleName, StepId, StepStatus, Template, TemplateId, TemplateStep, TemplateUpdate,
    TriggerRequest, UserId, Verdict,
};
use approvals::domain::ports::{DecideFn, RoleResolver, WorkflowRepository};
use approvals::outbound::memory::MemoryStore;
use approvals::outbound::postgres::PgStore;
use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use serde_json::json;
use tokio::sync::Barrier;

use crate::helpers::TestDb;

const CANCELLATION: &str = "booking.cancellation_requested";
const PRICE_UPDATE: &str = "unit.price_update_requested";
const COMMISSION: &str = "commission.approval_requested";

/// What the suite needs from a store beyond the ports: the directory and template set-up that
/// only fixtures and the `seed` command do.
trait ContractStore: WorkflowRepository + RoleResolver {
    /// Loads the demo's users, roles and templates into a fresh store.
    fn load_demo(&self) -> impl Future<Output = ()> + Send;
    /// Adds a user.
    fn add_user(&self, id: UserId, name: &str) -> impl Future<Output = ()> + Send;
    /// Replaces the roles `user` holds.
    fn set_user_roles(&self, user: UserId, roles: &[RoleName]) -> impl Future<Output = ()> + Send;
    /// Stores a template as given, id included.
    fn put_template(&self, template: Template) -> impl Future<Output = ()> + Send;
}

impl ContractStore for MemoryStore {
    async fn load_demo(&self) {
        MemoryStore::load_reference_data(self, &demo_data());
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
        let fresh = PgStore::load_reference_data(self, &demo_data())
            .await
            .expect("demo data loads");
        assert!(fresh, "the test database starts empty");
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
                let store = Arc::new(MemoryStore::new());
                store.load_demo().await;
                $case(store).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $postgres() {
                let db = TestDb::create().await;
                let store = db.store().await;
                store.load_demo().await;
                $case(store).await;
                drop(db);
            }
        )+
    };
}

contract_tests! {
    case_create_then_read => memory_create_then_read, postgres_create_then_read;
    case_one_active_instance_per_entity =>
        memory_one_active_instance_per_entity, postgres_one_active_instance_per_entity;
    case_concurrent_creates_have_one_winner =>
        memory_concurrent_creates_have_one_winner, postgres_concurrent_creates_have_one_winner;
    case_decide_transitions_and_refusals =>
        memory_decide_transitions_and_refusals, postgres_decide_transitions_and_refusals;
    case_racing_decisions_have_one_winner =>
        memory_racing_decisions_have_one_winner, postgres_racing_decisions_have_one_winner;
    case_audit_is_append_only => memory_audit_is_append_only, postgres_audit_is_append_only;
    case_pending_steps_follow_the_snapshot =>
        memory_pending_steps_follow_the_snapshot, postgres_pending_steps_follow_the_snapshot;
    case_role_resolution => memory_role_resolution, postgres_role_resolution;
    case_outbox_claims_leases_and_retries =>
        memory_outbox_claims_leases_and_retries, postgres_outbox_claims_leases_and_retries;
    case_templates => memory_templates, postgres_templates;
    case_stale_template_version_is_refused =>
        memory_stale_template_version_is_refused, postgres_stale_template_version_is_refused;
}

// ---------------------------------------------------------------------------------------------
// Fixtures

fn uid(id: i64) -> UserId {
    UserId::new(id).unwrap()
}

fn role(name: &str) -> RoleName {
    RoleName::new(name).unwrap()
}

fn by_role(name: &str) -> Approver {
    Approver::Role { role: role(name) }
}

fn by_user(id: i64) -> Approver {
    Approver::User { user_id: uid(id) }
}

fn event(name: &str) -> EventName {
    EventName::new(name).unwrap()
}

fn entity_type(name: &str) -> EntityType {
    EntityType::new(name).unwrap()
}

/// 2026-03-02 at `h:m:s`, plus a fixed fraction so sub-second precision is checked too.
fn at(h: u32, m: u32, s: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 2, h, m, s).unwrap() + TimeDelta::microseconds(123_456)
}

/// A time no lease or retry in the suite reaches.
fn far_future() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2100, 1, 1, 0, 0, 0).unwrap()
}

fn request(
    event_name: &str,
    kind: &str,
    entity_id: i64,
    by: i64,
    context: Option<serde_json::Value>,
) -> TriggerRequest {
    TriggerRequest {
        event: event(event_name),
        entity_type: entity_type(kind),
        entity_id: EntityId::new(entity_id).unwrap(),
        initiated_by: uid(by),
        context,
    }
}

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
    store.create_instance(new).await
}

fn decision(step: StepId, by: i64, verdict: Verdict, now: DateTime<Utc>) -> DecideFn {
    let request = DecisionRequest {
        step_id: step,
        acted_by: uid(by),
        verdict,
    };
    Box::new(move |instance: &Instance| machine::decide(instance, &request, now))
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
    store.decide(step, decision(step, by, verdict, now)).await
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
    store.decide(step, decision(step, by, verdict, now)).await
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
    }
}

async fn assert_no_callbacks<S: ContractStore>(store: &S) {
    let claimed = store
        .claim_callbacks(far_future(), far_future() + TimeDelta::seconds(1), 100)
        .await
        .unwrap();
    assert_eq!(claimed, vec![], "no callback event may be stored yet");
}

fn step_ids(instance: &Instance) -> (StepId, StepId) {
    assert_eq!(instance.steps.len(), 2, "{instance:?}");
    (instance.steps[0].id, instance.steps[1].id)
}

// ---------------------------------------------------------------------------------------------
// 1. Create, then read back

async fn case_create_then_read<S: ContractStore>(store: Arc<S>) {
    let t0 = at(9, 0, 0);
    let context = json!({
        "reason": "customer relocating",
        "refund_cents": 125_000,
        "ratio": 0.25,
        "tags": ["urgent", "vip"],
        "nested": {"ok": true, "note": null, "list": [1, {"deep": "yes"}]},
        "text": "naïve café ✓"
    });
    let new = new_instance(
        &*store,
        request(CANCELLATION, "booking", 7, 3, Some(context.clone())),
        t0,
    )
    .await;
    let created = store.create_instance(new).await.unwrap();

    assert_eq!(created.template_id, TemplateId::new(1).unwrap());
    assert_eq!(created.template_version, 1);
    assert_eq!(created.event, event(CANCELLATION));
    assert_eq!(created.entity_type, entity_type("booking"));
    assert_eq!(created.entity_id.get(), 7);
    assert_eq!(created.initiated_by, uid(3));
    assert_eq!(created.status, InstanceStatus::InProgress);
    assert_eq!(created.context, Some(context.clone()));
    assert_eq!(created.created_at, t0);
    assert_eq!(created.updated_at, t0);
    assert_eq!(created.completed_at, None);

    let orders: Vec<i32> = created.steps.iter().map(|s| s.step_order).collect();
    assert_eq!(orders, vec![1, 2]);
    let (s1, s2) = step_ids(&created);
    assert_ne!(s1, s2);
    let first = &created.steps[0];
    assert_eq!(first.name, "Sales manager review");
    assert_eq!(first.approver, by_role("sales_manager"));
    assert_eq!(first.eligible_user_ids, vec![uid(1)]);
    assert_eq!(first.status, StepStatus::AwaitingAction);
    assert_eq!(first.activated_at, Some(t0));
    assert_eq!(first.acted_by_user_id, None);
    assert_eq!(first.comment, None);
    assert_eq!(first.acted_at, None);
    let second = &created.steps[1];
    assert_eq!(second.name, "Finance manager approval");
    assert_eq!(second.approver, by_role("finance_manager"));
    assert_eq!(second.eligible_user_ids, vec![uid(2)]);
    assert_eq!(second.status, StepStatus::Pending);
    assert_eq!(second.activated_at, None);
    assert_eq!(second.acted_by_user_id, None);

    assert_eq!(
        audit_summary(&created),
        vec![
            (AuditAction::InstanceCreated, None, Some(uid(3))),
            (AuditAction::StepActivated, Some(s1), None),
        ]
    );
    assert_audit_well_formed(&created);
    assert!(
        created
            .audit
            .iter()
            .all(|a| a.at == t0 && a.comment.is_none())
    );

    let read = store.instance(created.id).await.unwrap();
    assert_eq!(
        read, created,
        "instance(id) returns what create_instance returned"
    );

    // A template with a direct-user step, and no context.
    let t1 = at(9, 5, 0);
    let unit = start(&*store, PRICE_UPDATE, "unit", 4, 1, t1)
        .await
        .unwrap();
    assert_ne!(unit.id, created.id);
    assert_eq!(unit.template_id, TemplateId::new(2).unwrap());
    assert_eq!(unit.context, None);
    assert_eq!(unit.steps[1].approver, by_user(2));
    assert_eq!(unit.steps[1].eligible_user_ids, vec![uid(2)]);
    let (u1, _) = step_ids(&unit);
    assert!(
        ![s1, s2].contains(&u1),
        "step ids are unique across instances"
    );
    assert!(
        unit.audit[0].id > created.audit[1].id,
        "audit ids increase across instances"
    );
    assert_eq!(store.instance(unit.id).await.unwrap(), unit);
    // Reading one instance never mixes in another's steps or audit.
    assert_eq!(store.instance(created.id).await.unwrap(), created);

    let unknown = InstanceId::new(created.id.get() + 1_000).unwrap();
    assert!(
        matches!(
            store.instance(unknown).await,
            Err(WorkflowError::NotFound { .. })
        ),
        "unknown instance id"
    );
}

// ---------------------------------------------------------------------------------------------
// 2. One active instance per (event, entity_type, entity_id)

async fn case_one_active_instance_per_entity<S: ContractStore>(store: Arc<S>) {
    // A second event on bookings, to show the rule is per event.
    store
        .put_template(Template {
            id: TemplateId::new(10).unwrap(),
            name: "Booking refund".to_owned(),
            event: event("booking.refund_requested"),
            entity_type: entity_type("booking"),
            version: 1,
            is_active: true,
            steps: vec![TemplateStep {
                step_order: 1,
                name: "Finance review".to_owned(),
                approver: by_role("finance_manager"),
            }],
        })
        .await;

    let first = start(&*store, CANCELLATION, "booking", 1, 3, at(9, 0, 0))
        .await
        .unwrap();
    let again = start(&*store, CANCELLATION, "booking", 1, 3, at(9, 1, 0)).await;
    assert_eq!(
        again.unwrap_err(),
        WorkflowError::InstanceAlreadyActive {
            existing: first.id.get()
        }
    );
    // The refused creation wrote nothing: the sales manager's inbox holds one step.
    assert_eq!(
        store.pending_steps(uid(1), 50).await.unwrap(),
        vec![pending_line(&first, 1)]
    );

    let other_entity = start(&*store, CANCELLATION, "booking", 2, 3, at(9, 2, 0))
        .await
        .unwrap();
    let other_event = start(
        &*store,
        "booking.refund_requested",
        "booking",
        1,
        3,
        at(9, 3, 0),
    )
    .await
    .unwrap();
    let other_type = start(&*store, PRICE_UPDATE, "unit", 1, 3, at(9, 4, 0))
        .await
        .unwrap();
    let ids: BTreeSet<InstanceId> = [first.id, other_entity.id, other_event.id, other_type.id]
        .into_iter()
        .collect();
    assert_eq!(ids.len(), 4, "each accepted instance has its own id");

    // Once the first instance has ended, the entity may be triggered again, once.
    let ended = reject(&*store, first.steps[0].id, 1, "not eligible", at(9, 10, 0))
        .await
        .unwrap();
    assert_eq!(ended.status, InstanceStatus::Rejected);
    let renewed = start(&*store, CANCELLATION, "booking", 1, 3, at(9, 11, 0))
        .await
        .unwrap();
    assert!(!ids.contains(&renewed.id));
    assert_eq!(renewed.status, InstanceStatus::InProgress);
    assert_eq!(
        start(&*store, CANCELLATION, "booking", 1, 3, at(9, 12, 0))
            .await
            .unwrap_err(),
        WorkflowError::InstanceAlreadyActive {
            existing: renewed.id.get()
        }
    );
    // The ended instance stays as it was.
    assert_eq!(store.instance(first.id).await.unwrap(), ended);
}

// ---------------------------------------------------------------------------------------------
// 3. Concurrent creates for one entity

async fn case_concurrent_creates_have_one_winner<S: ContractStore>(store: Arc<S>) {
    const RACERS: usize = 10;
    let new = new_instance(
        &*store,
        request(CANCELLATION, "booking", 5, 3, Some(json!({"n": 1}))),
        at(10, 0, 0),
    )
    .await;
    let barrier = Arc::new(Barrier::new(RACERS));
    let tasks: Vec<_> = (0..RACERS)
        .map(|_| {
            let store = Arc::clone(&store);
            let barrier = Arc::clone(&barrier);
            let new = new.clone();
            tokio::spawn(async move {
                barrier.wait().await;
                store.create_instance(new).await
            })
        })
        .collect();
    let mut winners = Vec::new();
    let mut losers = Vec::new();
    for task in tasks {
        match task.await.expect("task completes") {
            Ok(instance) => winners.push(instance),
            Err(e) => losers.push(e),
        }
    }
    assert_eq!(
        winners.len(),
        1,
        "exactly one creation wins; losers: {losers:?}"
    );
    let winner = &winners[0];
    assert_eq!(losers.len(), RACERS - 1);
    for e in &losers {
        assert_eq!(
            e,
            &WorkflowError::InstanceAlreadyActive {
                existing: winner.id.get()
            }
        );
    }
    assert_eq!(&store.instance(winner.id).await.unwrap(), winner);
    assert_eq!(
        store.pending_steps(uid(1), 50).await.unwrap(),
        vec![pending_line(winner, 1)],
        "only the winner's steps were stored"
    );
}

// ---------------------------------------------------------------------------------------------
// 4. Decisions: transitions and refusals

async fn case_decide_transitions_and_refusals<S: ContractStore>(store: Arc<S>) {
    let t0 = at(11, 0, 0);
    let created = start(&*store, CANCELLATION, "booking", 3, 3, t0)
        .await
        .unwrap();
    let (s1, s2) = step_ids(&created);

    // Refusals write nothing.
    let wrong_user = approve(&*store, s1, 2, None, at(11, 1, 0)).await;
    assert_eq!(
        wrong_user.unwrap_err(),
        WorkflowError::NotAnApprover {
            user: uid(2),
            step: s1.get()
        }
    );
    let not_reached = approve(&*store, s2, 2, None, at(11, 1, 0)).await;
    assert_eq!(
        not_reached.unwrap_err(),
        WorkflowError::StepNotActionable {
            step: s2.get(),
            status: StepStatus::Pending
        }
    );
    let refusal: DecideFn =
        Box::new(|_: &Instance| Err(WorkflowError::validation("comment", "refused by the test")));
    assert_eq!(
        store.decide(s1, refusal).await.unwrap_err(),
        WorkflowError::validation("comment", "refused by the test")
    );
    assert_eq!(store.instance(created.id).await.unwrap(), created);
    assert_no_callbacks(&*store).await;

    let unknown = StepId::new(s2.get() + 10_000).unwrap();
    assert!(
        matches!(
            approve(&*store, unknown, 1, None, at(11, 1, 0)).await,
            Err(WorkflowError::NotFound { .. })
        ),
        "unknown step id"
    );

    // Approve step 1: step 2 becomes actionable.
    let t1 = at(11, 2, 0);
    let after_first = approve(&*store, s1, 1, Some("looks fine"), t1)
        .await
        .unwrap();
    assert_eq!(after_first.id, created.id);
    assert_eq!(after_first.status, InstanceStatus::InProgress);
    assert_eq!(after_first.updated_at, t1);
    assert_eq!(after_first.completed_at, None);
    assert_eq!(after_first.created_at, t0);
    let step1 = &after_first.steps[0];
    assert_eq!(step1.status, StepStatus::Approved);
    assert_eq!(step1.acted_by_user_id, Some(uid(1)));
    assert_eq!(step1.comment.as_deref(), Some("looks fine"));
    assert_eq!(step1.acted_at, Some(t1));
    assert_eq!(step1.activated_at, Some(t0));
    let step2 = &after_first.steps[1];
    assert_eq!(step2.status, StepStatus::AwaitingAction);
    assert_eq!(step2.activated_at, Some(t1));
    assert_eq!(step2.acted_by_user_id, None);
    assert_eq!(
        audit_summary(&after_first),
        vec![
            (AuditAction::InstanceCreated, None, Some(uid(3))),
            (AuditAction::StepActivated, Some(s1), None),
            (AuditAction::StepApproved, Some(s1), Some(uid(1))),
            (AuditAction::StepActivated, Some(s2), None),
        ]
    );
    assert_eq!(after_first.audit[2].comment.as_deref(), Some("looks fine"));
    assert_eq!(after_first.audit[2].at, t1);
    assert_eq!(after_first.audit[3].at, t1);
    assert_audit_well_formed(&after_first);
    assert_eq!(store.instance(created.id).await.unwrap(), after_first);
    assert_no_callbacks(&*store).await;

    // The decided step can't be decided again; a wrong user on the last step writes nothing.
    assert_eq!(
        approve(&*store, s1, 1, None, at(11, 3, 0))
            .await
            .unwrap_err(),
        WorkflowError::StepNotActionable {
            step: s1.get(),
            status: StepStatus::Approved
        }
    );
    assert_eq!(
        reject(&*store, s2, 1, "no", at(11, 3, 0))
            .await
            .unwrap_err(),
        WorkflowError::NotAnApprover {
            user: uid(1),
            step: s2.get()
        }
    );
    assert_eq!(store.instance(created.id).await.unwrap(), after_first);
    assert_no_callbacks(&*store).await;

    // Approve the last step: the instance is approved.
    let t2 = at(11, 4, 0);
    let approved = approve(&*store, s2, 2, None, t2).await.unwrap();
    assert_eq!(approved.status, InstanceStatus::Approved);
    assert_eq!(approved.updated_at, t2);
    assert_eq!(approved.completed_at, Some(t2));
    assert_eq!(approved.steps[1].status, StepStatus::Approved);
    assert_eq!(approved.steps[1].acted_by_user_id, Some(uid(2)));
    assert_eq!(approved.steps[1].comment, None);
    assert_eq!(approved.steps[1].acted_at, Some(t2));
    assert_eq!(approved.steps[0], after_first.steps[0]);
    assert_eq!(
        audit_summary(&approved)[4..],
        [
            (AuditAction::StepApproved, Some(s2), Some(uid(2))),
            (AuditAction::InstanceApproved, None, Some(uid(2))),
        ]
    );
    assert_eq!(store.instance(created.id).await.unwrap(), approved);
    assert_eq!(
        approve(&*store, s2, 2, None, at(11, 5, 0))
            .await
            .unwrap_err(),
        WorkflowError::StepNotActionable {
            step: s2.get(),
            status: StepStatus::Approved
        }
    );

    // Reject step 1 of another instance: later steps are cancelled.
    let other = start(&*store, CANCELLATION, "booking", 4, 3, at(11, 6, 0))
        .await
        .unwrap();
    let (o1, o2) = step_ids(&other);
    let t3 = at(11, 7, 0);
    let rejected = reject(&*store, o1, 1, "customer changed their mind", t3)
        .await
        .unwrap();
    assert_eq!(rejected.status, InstanceStatus::Rejected);
    assert_eq!(rejected.completed_at, Some(t3));
    assert_eq!(rejected.steps[0].status, StepStatus::Rejected);
    assert_eq!(
        rejected.steps[0].comment.as_deref(),
        Some("customer changed their mind")
    );
    assert_eq!(rejected.steps[0].acted_by_user_id, Some(uid(1)));
    assert_eq!(rejected.steps[1].status, StepStatus::Cancelled);
    assert_eq!(rejected.steps[1].acted_by_user_id, None);
    assert_eq!(
        audit_summary(&rejected)[2..],
        [
            (AuditAction::StepRejected, Some(o1), Some(uid(1))),
            (AuditAction::InstanceRejected, None, Some(uid(1))),
        ]
    );
    assert_eq!(store.instance(other.id).await.unwrap(), rejected);
    assert_eq!(
        approve(&*store, o2, 2, None, at(11, 8, 0))
            .await
            .unwrap_err(),
        WorkflowError::StepNotActionable {
            step: o2.get(),
            status: StepStatus::Cancelled
        }
    );
    // The first instance is untouched by decisions on the second.
    assert_eq!(store.instance(created.id).await.unwrap(), approved);
}

// ---------------------------------------------------------------------------------------------
// 5. Racing decisions on one step

async fn case_racing_decisions_have_one_winner<S: ContractStore>(store: Arc<S>) {
    const RACERS: i64 = 20;
    // Several rounds, one fresh instance each: a lost race is timing-dependent, so one round
    // alone could let a missing lock slip through.
    const ROUNDS: i64 = 4;
    let racers: Vec<i64> = (100..100 + RACERS).collect();
    for &id in &racers {
        store.add_user(uid(id), &format!("Deputy {id}")).await;
        store
            .set_user_roles(uid(id), &[role("sales_manager")])
            .await;
    }
    let mut expected_eligible: Vec<UserId> = racers.iter().map(|&id| uid(id)).collect();
    expected_eligible.insert(0, uid(1));

    for round in 1..=ROUNDS {
        let created = start(&*store, CANCELLATION, "booking", round, 3, at(12, 0, 0))
            .await
            .unwrap();
        let (s1, s2) = step_ids(&created);
        assert_eq!(created.steps[0].eligible_user_ids, expected_eligible);

        let barrier = Arc::new(Barrier::new(racers.len()));
        let tasks: Vec<_> = racers
            .iter()
            .map(|&by| {
                let store = Arc::clone(&store);
                let barrier = Arc::clone(&barrier);
                tokio::spawn(async move {
                    barrier.wait().await;
                    (by, approve(&*store, s1, by, None, at(12, 1, 0)).await)
                })
            })
            .collect();
        let mut winners = Vec::new();
        let mut losers = Vec::new();
        for task in tasks {
            match task.await.expect("task completes") {
                (by, Ok(instance)) => winners.push((by, instance)),
                (_, Err(e)) => losers.push(e),
            }
        }
        assert_eq!(
            winners.len(),
            1,
            "round {round}: exactly one decision wins; losers: {losers:?}"
        );
        assert_eq!(losers.len(), racers.len() - 1);
        for e in &losers {
            assert_eq!(
                e,
                &WorkflowError::StepNotActionable {
                    step: s1.get(),
                    status: StepStatus::Approved
                },
                "round {round}"
            );
        }
        let (winner, returned) = &winners[0];
        assert_eq!(returned.steps[0].acted_by_user_id, Some(uid(*winner)));

        let stored = store.instance(created.id).await.unwrap();
        assert_eq!(&stored, returned);
        assert_eq!(stored.status, InstanceStatus::InProgress);
        assert_eq!(stored.steps[0].status, StepStatus::Approved);
        assert_eq!(stored.steps[1].status, StepStatus::AwaitingAction);
        let count = |action: AuditAction, step: StepId| {
            stored
                .audit
                .iter()
                .filter(|a| a.action == action && a.step_id == Some(step))
                .count()
        };
        assert_eq!(count(AuditAction::StepApproved, s1), 1, "round {round}");
        assert_eq!(count(AuditAction::StepActivated, s2), 1, "round {round}");
        assert_eq!(stored.audit.len(), 4, "round {round}: {:?}", stored.audit);
        assert_audit_well_formed(&stored);
    }
    assert_no_callbacks(&*store).await;
}

// ---------------------------------------------------------------------------------------------
// 6. The audit log only grows

async fn case_audit_is_append_only<S: ContractStore>(store: Arc<S>) {
    let a = start(&*store, CANCELLATION, "booking", 2, 3, at(13, 0, 0))
        .await
        .unwrap();
    let b = start(&*store, COMMISSION, "commission", 2, 3, at(13, 0, 30))
        .await
        .unwrap();
    let (a1, a2) = step_ids(&a);
    let (b1, _) = step_ids(&b);
    let created: Vec<AuditEntry> = a.audit.clone();

    let after_first = approve(&*store, a1, 1, Some("first"), at(13, 1, 0))
        .await
        .unwrap();
    assert!(
        after_first.audit.starts_with(&created),
        "earlier entries unchanged: {:?} then {:?}",
        created,
        after_first.audit
    );
    assert_eq!(after_first.audit.len(), created.len() + 2);

    // Decisions on another instance don't reach this log.
    approve(&*store, b1, 2, None, at(13, 2, 0)).await.unwrap();

    let after_second = reject(&*store, a2, 2, "second thoughts", at(13, 3, 0))
        .await
        .unwrap();
    assert!(after_second.audit.starts_with(&after_first.audit));
    assert_eq!(after_second.audit.len(), after_first.audit.len() + 2);

    let stored = store.instance(a.id).await.unwrap();
    assert_eq!(stored.audit, after_second.audit);
    assert!(stored.audit.starts_with(&created));
    assert_audit_well_formed(&stored);
    assert_eq!(
        audit_summary(&stored),
        vec![
            (AuditAction::InstanceCreated, None, Some(uid(3))),
            (AuditAction::StepActivated, Some(a1), None),
            (AuditAction::StepApproved, Some(a1), Some(uid(1))),
            (AuditAction::StepActivated, Some(a2), None),
            (AuditAction::StepRejected, Some(a2), Some(uid(2))),
            (AuditAction::InstanceRejected, None, Some(uid(2))),
        ]
    );
    let comments: Vec<Option<&str>> = stored.audit.iter().map(|e| e.comment.as_deref()).collect();
    assert_eq!(
        comments,
        vec![
            None,
            None,
            Some("first"),
            None,
            Some("second thoughts"),
            None
        ]
    );
    let times: Vec<DateTime<Utc>> = stored.audit.iter().map(|e| e.at).collect();
    assert_eq!(
        times,
        vec![
            at(13, 0, 0),
            at(13, 0, 0),
            at(13, 1, 0),
            at(13, 1, 0),
            at(13, 3, 0),
            at(13, 3, 0)
        ]
    );

    // The other instance's log holds its own entries only.
    let other = store.instance(b.id).await.unwrap();
    assert!(other.audit.starts_with(&b.audit));
    assert_eq!(other.audit.len(), 4);
    assert_audit_well_formed(&other);
}

// ---------------------------------------------------------------------------------------------
// 7. The inbox follows the eligibility snapshot

async fn case_pending_steps_follow_the_snapshot<S: ContractStore>(store: Arc<S>) {
    store.add_user(uid(50), "Late Joiner").await;

    let i1 = start(&*store, CANCELLATION, "booking", 1, 3, at(14, 0, 0))
        .await
        .unwrap();
    let i2 = start(&*store, PRICE_UPDATE, "unit", 2, 3, at(14, 1, 0))
        .await
        .unwrap();
    let i3 = start(&*store, COMMISSION, "commission", 3, 3, at(14, 2, 0))
        .await
        .unwrap();
    // Created last, activated first: the inbox orders by activation, not by id.
    let i4 = start(&*store, CANCELLATION, "booking", 2, 3, at(13, 59, 0))
        .await
        .unwrap();

    let inbox = |user: i64, limit: u32| {
        let store = Arc::clone(&store);
        async move { store.pending_steps(uid(user), limit).await.unwrap() }
    };

    assert_eq!(
        inbox(1, 50).await,
        vec![
            pending_line(&i4, 1),
            pending_line(&i1, 1),
            pending_line(&i2, 1)
        ]
    );
    assert_eq!(
        inbox(1, 2).await,
        vec![pending_line(&i4, 1), pending_line(&i1, 1)]
    );
    assert_eq!(inbox(1, 1).await, vec![pending_line(&i4, 1)]);
    assert_eq!(inbox(2, 50).await, vec![pending_line(&i3, 1)]);
    assert_eq!(inbox(3, 50).await, vec![]);
    assert_eq!(inbox(50, 50).await, vec![]);
    assert_eq!(inbox(999, 50).await, vec![]);

    // A decided step leaves the inbox; the next step (a direct user step) enters its user's.
    let i3 = approve(&*store, i3.steps[0].id, 2, None, at(14, 10, 0))
        .await
        .unwrap();
    assert_eq!(inbox(2, 50).await, vec![]);
    assert_eq!(
        inbox(1, 50).await,
        vec![
            pending_line(&i4, 1),
            pending_line(&i1, 1),
            pending_line(&i2, 1),
            pending_line(&i3, 2)
        ]
    );
    let i2 = approve(&*store, i2.steps[0].id, 1, None, at(14, 11, 0))
        .await
        .unwrap();
    assert_eq!(inbox(2, 50).await, vec![pending_line(&i2, 2)]);
    assert_eq!(
        inbox(1, 50).await,
        vec![
            pending_line(&i4, 1),
            pending_line(&i1, 1),
            pending_line(&i3, 2)
        ]
    );

    // Role changes after creation change neither the inbox nor who may act.
    store.set_user_roles(uid(1), &[]).await;
    store
        .set_user_roles(uid(50), &[role("sales_manager")])
        .await;
    assert_eq!(
        store
            .eligible_users(&[by_role("sales_manager")])
            .await
            .unwrap(),
        vec![vec![uid(50)]],
        "the role changed now"
    );
    assert_eq!(
        inbox(1, 50).await,
        vec![
            pending_line(&i4, 1),
            pending_line(&i1, 1),
            pending_line(&i3, 2)
        ]
    );
    assert_eq!(inbox(50, 50).await, vec![]);
    assert_eq!(
        approve(&*store, i1.steps[0].id, 50, None, at(14, 12, 0))
            .await
            .unwrap_err(),
        WorkflowError::NotAnApprover {
            user: uid(50),
            step: i1.steps[0].id.get()
        }
    );
    let i1 = approve(&*store, i1.steps[0].id, 1, None, at(14, 13, 0))
        .await
        .unwrap();
    assert_eq!(i1.steps[0].status, StepStatus::Approved);
    assert_eq!(
        inbox(1, 50).await,
        vec![pending_line(&i4, 1), pending_line(&i3, 2)]
    );
    assert_eq!(
        inbox(2, 50).await,
        vec![pending_line(&i2, 2), pending_line(&i1, 2)]
    );
}

// ---------------------------------------------------------------------------------------------
// 8. Who the users are, and who holds a role now

async fn case_role_resolution<S: ContractStore>(store: Arc<S>) {
    let sorted = |mut lists: Vec<Vec<UserId>>| {
        for list in &mut lists {
            list.sort();
        }
        lists
    };

    assert_eq!(
        store
            .eligible_users(&[
                by_role("sales_manager"),
                by_role("finance_manager"),
                by_role("sales_coordinator"),
                by_role("no_such_role"),
                by_user(2),
                by_user(999),
                by_role("sales_manager"),
            ])
            .await
            .unwrap(),
        vec![
            vec![uid(1)],
            vec![uid(2)],
            vec![uid(3)],
            vec![],
            vec![uid(2)],
            vec![],
            vec![uid(1)],
        ]
    );
    assert_eq!(
        store.eligible_users(&[]).await.unwrap(),
        Vec::<Vec<UserId>>::new()
    );

    assert!(store.user_exists(uid(1)).await.unwrap());
    assert!(store.user_exists(uid(3)).await.unwrap());
    assert!(!store.user_exists(uid(10)).await.unwrap());
    assert!(!store.user_exists(uid(999)).await.unwrap());

    store.add_user(uid(10), "Deputy").await;
    store.add_user(uid(11), "Controller").await;
    assert!(store.user_exists(uid(10)).await.unwrap());
    assert_eq!(
        store.eligible_users(&[by_user(10)]).await.unwrap(),
        vec![vec![uid(10)]]
    );
    store
        .set_user_roles(uid(10), &[role("finance_manager"), role("sales_manager")])
        .await;
    store
        .set_user_roles(uid(11), &[role("finance_manager")])
        .await;
    let now = store
        .eligible_users(&[by_role("finance_manager"), by_role("sales_manager")])
        .await
        .unwrap();
    assert_eq!(
        sorted(now),
        vec![vec![uid(2), uid(10), uid(11)], vec![uid(1), uid(10)]]
    );

    // Replacing roles removes the old ones; a new role works at once.
    store
        .set_user_roles(uid(10), &[role("sales_coordinator"), role("auditor")])
        .await;
    let now = store
        .eligible_users(&[
            by_role("finance_manager"),
            by_role("sales_manager"),
            by_role("sales_coordinator"),
            by_role("auditor"),
        ])
        .await
        .unwrap();
    assert_eq!(
        sorted(now),
        vec![
            vec![uid(2), uid(11)],
            vec![uid(1)],
            vec![uid(3), uid(10)],
            vec![uid(10)],
        ]
    );
    store.set_user_roles(uid(11), &[]).await;
    assert_eq!(
        store
            .eligible_users(&[by_role("finance_manager")])
            .await
            .unwrap(),
        vec![vec![uid(2)]]
    );
    assert!(
        store.user_exists(uid(11)).await.unwrap(),
        "a user without roles still exists"
    );
}

// ---------------------------------------------------------------------------------------------
// 9. The callback outbox

async fn case_outbox_claims_leases_and_retries<S: ContractStore>(store: Arc<S>) {
    let booking = start(&*store, CANCELLATION, "booking", 1, 3, at(15, 0, 0))
        .await
        .unwrap();
    let (s1, s2) = step_ids(&booking);
    approve(&*store, s1, 1, None, at(15, 1, 0)).await.unwrap();
    assert_no_callbacks(&*store).await;

    let t2 = at(15, 2, 0);
    approve(&*store, s2, 2, Some("refund approved"), t2)
        .await
        .unwrap();
    let approved_event = CallbackEvent {
        kind: CallbackKind::OnApproved,
        instance_id: booking.id,
        event: event(CANCELLATION),
        entity_type: entity_type("booking"),
        entity_id: booking.entity_id,
        decided_by: uid(2),
        comment: Some("refund approved".to_owned()),
        at: t2,
    };

    let lease = t2 + TimeDelta::seconds(60);
    let claimed = store.claim_callbacks(t2, lease, 10).await.unwrap();
    assert_eq!(
        claimed.len(),
        1,
        "exactly one event per ended instance: {claimed:?}"
    );
    let id = claimed[0].id;
    assert_eq!(claimed[0].attempts, 1);
    assert_eq!(claimed[0].event, approved_event);

    // Leased: nobody else gets it before the lease ends.
    assert_eq!(
        store
            .claim_callbacks(
                t2 + TimeDelta::seconds(30),
                lease + TimeDelta::seconds(30),
                10
            )
            .await
            .unwrap(),
        vec![]
    );

    // A failed delivery comes due again at retry_at, not before.
    let retry_at = t2 + TimeDelta::seconds(120);
    store
        .mark_callback_failed(id, "x".to_owned(), retry_at)
        .await
        .unwrap();
    assert_eq!(
        store
            .claim_callbacks(
                retry_at - TimeDelta::seconds(1),
                retry_at + TimeDelta::seconds(60),
                10
            )
            .await
            .unwrap(),
        vec![]
    );
    let retried = store
        .claim_callbacks(retry_at, retry_at + TimeDelta::seconds(60), 10)
        .await
        .unwrap();
    assert_eq!(retried.len(), 1, "{retried:?}");
    assert_eq!(retried[0].id, id);
    assert_eq!(retried[0].attempts, 2);
    assert_eq!(retried[0].event, approved_event);

    // Delivered: never claimed again.
    store.mark_callback_delivered(id, retry_at).await.unwrap();
    assert_no_callbacks(&*store).await;

    // A rejection stores one on_rejected event.
    let other = start(&*store, CANCELLATION, "booking", 2, 3, at(15, 10, 0))
        .await
        .unwrap();
    let t3 = at(15, 11, 0);
    reject(&*store, other.steps[0].id, 1, "duplicate request", t3)
        .await
        .unwrap();
    let claimed = store
        .claim_callbacks(t3, t3 + TimeDelta::seconds(60), 10)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1, "{claimed:?}");
    assert_ne!(claimed[0].id, id);
    assert_eq!(claimed[0].attempts, 1);
    assert_eq!(
        claimed[0].event,
        CallbackEvent {
            kind: CallbackKind::OnRejected,
            instance_id: other.id,
            event: event(CANCELLATION),
            entity_type: entity_type("booking"),
            entity_id: other.entity_id,
            decided_by: uid(1),
            comment: Some("duplicate request".to_owned()),
            at: t3,
        }
    );
    // Neither delivered nor failed: it comes due again when its lease ends (at-least-once).
    let lease_end = t3 + TimeDelta::seconds(60);
    let again = store
        .claim_callbacks(lease_end, lease_end + TimeDelta::seconds(60), 10)
        .await
        .unwrap();
    assert_eq!(again.len(), 1, "{again:?}");
    assert_eq!(again[0].id, claimed[0].id);
    assert_eq!(again[0].attempts, 2);
    assert_eq!(again[0].event, claimed[0].event);
    store
        .mark_callback_delivered(claimed[0].id, lease_end)
        .await
        .unwrap();
    assert_no_callbacks(&*store).await;

    // The limit is honoured; the rest stay claimable.
    let mut ended = BTreeSet::new();
    for entity in 1..=3 {
        let instance = start(&*store, COMMISSION, "commission", entity, 3, at(16, 0, 0))
            .await
            .unwrap();
        reject(&*store, instance.steps[0].id, 2, "too high", at(16, 1, 0))
            .await
            .unwrap();
        ended.insert(instance.id);
    }
    let now = at(16, 2, 0);
    let lease = now + TimeDelta::seconds(60);
    let first = store.claim_callbacks(now, lease, 2).await.unwrap();
    assert_eq!(first.len(), 2, "{first:?}");
    let rest = store.claim_callbacks(now, lease, 2).await.unwrap();
    assert_eq!(rest.len(), 1, "{rest:?}");
    assert_eq!(store.claim_callbacks(now, lease, 2).await.unwrap(), vec![]);
    let claimed: Vec<_> = first.iter().chain(&rest).collect();
    let ids: BTreeSet<i64> = claimed.iter().map(|c| c.id).collect();
    assert_eq!(ids.len(), 3, "distinct events");
    let instances: BTreeSet<InstanceId> = claimed.iter().map(|c| c.event.instance_id).collect();
    assert_eq!(instances, ended);
    for item in &claimed {
        assert_eq!(item.attempts, 1);
        assert_eq!(item.event.kind, CallbackKind::OnRejected);
        assert_eq!(item.event.comment.as_deref(), Some("too high"));
    }
}

// ---------------------------------------------------------------------------------------------
// 10. Templates

async fn case_templates<S: ContractStore>(store: Arc<S>) {
    let demo = demo_data();
    assert_eq!(
        store.active_template(&event(CANCELLATION)).await.unwrap(),
        Some(demo.templates[0].clone())
    );
    assert_eq!(
        store
            .active_template(&event("no.such_event"))
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        store.template(TemplateId::new(3).unwrap()).await.unwrap(),
        demo.templates[2]
    );
    assert!(matches!(
        store.template(TemplateId::new(999).unwrap()).await,
        Err(WorkflowError::NotFound { .. })
    ));

    let unit_template = TemplateId::new(2).unwrap();
    let update = TemplateUpdate {
        name: Some("Unit price change".to_owned()),
        is_active: None,
        steps: Some(vec![TemplateStep {
            step_order: 1,
            name: "Finance only".to_owned(),
            approver: by_role("finance_manager"),
        }]),
    };
    assert!(matches!(
        store
            .update_template(TemplateId::new(999).unwrap(), update.clone())
            .await,
        Err(WorkflowError::NotFound { .. })
    ));

    // In use: refused, nothing changed.
    let running = start(&*store, PRICE_UPDATE, "unit", 5, 3, at(17, 0, 0))
        .await
        .unwrap();
    assert_eq!(
        store
            .update_template(unit_template, update.clone())
            .await
            .unwrap_err(),
        WorkflowError::TemplateInUse { template: 2 }
    );
    assert_eq!(
        store.template(unit_template).await.unwrap(),
        demo.templates[1]
    );

    // Ended: the update applies and bumps the version.
    reject(&*store, running.steps[0].id, 1, "withdrawn", at(17, 1, 0))
        .await
        .unwrap();
    let updated = store
        .update_template(unit_template, update.clone())
        .await
        .unwrap();
    let expected = Template {
        name: "Unit price change".to_owned(),
        version: 2,
        steps: update.steps.clone().unwrap(),
        ..demo.templates[1].clone()
    };
    assert_eq!(updated, expected);
    assert_eq!(store.template(unit_template).await.unwrap(), expected);
    assert_eq!(
        store.active_template(&event(PRICE_UPDATE)).await.unwrap(),
        Some(expected.clone())
    );
    // New instances use the new version; the ended one keeps its copy of the old steps.
    let next = start(&*store, PRICE_UPDATE, "unit", 5, 3, at(17, 2, 0))
        .await
        .unwrap();
    assert_eq!(next.template_version, 2);
    assert_eq!(next.steps.len(), 1);
    assert_eq!(next.steps[0].eligible_user_ids, vec![uid(2)]);
    assert_eq!(store.instance(running.id).await.unwrap().steps.len(), 2);

    // A second template for an event may exist inactive, but not be activated beside another.
    let alternative = Template {
        id: TemplateId::new(20).unwrap(),
        name: "Cancellation, finance only".to_owned(),
        event: event(CANCELLATION),
        entity_type: entity_type("booking"),
        version: 1,
        is_active: false,
        steps: vec![TemplateStep {
            step_order: 1,
            name: "Finance review".to_owned(),
            approver: by_role("finance_manager"),
        }],
    };
    store.put_template(alternative.clone()).await;
    assert_eq!(store.template(alternative.id).await.unwrap(), alternative);
    assert_eq!(
        store.active_template(&event(CANCELLATION)).await.unwrap(),
        Some(demo.templates[0].clone())
    );
    let activate = TemplateUpdate {
        name: None,
        is_active: Some(true),
        steps: None,
    };
    match store
        .update_template(alternative.id, activate.clone())
        .await
    {
        Err(WorkflowError::Validation { field, .. }) => assert_eq!(field, "is_active"),
        other => panic!("expected a validation error on is_active, got {other:?}"),
    }
    assert_eq!(store.template(alternative.id).await.unwrap(), alternative);
    assert_eq!(
        store.template(TemplateId::new(1).unwrap()).await.unwrap(),
        demo.templates[0]
    );

    // Deactivate the first, then the second may be activated.
    let deactivated = store
        .update_template(
            TemplateId::new(1).unwrap(),
            TemplateUpdate {
                name: None,
                is_active: Some(false),
                steps: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(
        deactivated,
        Template {
            is_active: false,
            version: 2,
            ..demo.templates[0].clone()
        }
    );
    let activated = store
        .update_template(alternative.id, activate)
        .await
        .unwrap();
    let expected = Template {
        is_active: true,
        version: 2,
        ..alternative
    };
    assert_eq!(activated, expected);
    assert_eq!(
        store.active_template(&event(CANCELLATION)).await.unwrap(),
        Some(expected)
    );
}

/// An instance built from a template that has changed since is refused, and nothing is stored:
/// instances always copy the template as it is when they are stored.
async fn case_stale_template_version_is_refused<S: ContractStore>(store: Arc<S>) {
    let stale = new_instance(
        &*store,
        request(PRICE_UPDATE, "unit", 7, 1, None),
        at(9, 0, 0),
    )
    .await;
    let renamed = TemplateUpdate {
        name: Some("Unit price change, v2".to_owned()),
        is_active: None,
        steps: None,
    };
    let template = store
        .update_template(TemplateId::new(2).unwrap(), renamed)
        .await
        .unwrap();
    assert_eq!(template.version, 2);
    assert!(matches!(
        store.create_instance(stale).await,
        Err(WorkflowError::Unavailable(_))
    ));
    assert!(
        store
            .pending_steps(uid(1), 50)
            .await
            .unwrap()
            .iter()
            .all(|p| p.entity_id.get() != 7)
    );
    let fresh = new_instance(
        &*store,
        request(PRICE_UPDATE, "unit", 7, 1, None),
        at(9, 0, 1),
    )
    .await;
    let stored = store.create_instance(fresh).await.unwrap();
    assert_eq!(stored.template_version, 2);
}
