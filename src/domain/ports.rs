//! Ports: the edges of the hexagon, each documented by its contract.
//!
//! The driving port, [`WorkflowUseCases`], is what inbound adapters (HTTP) call; the service
//! implements it. The driven ports are what the core needs from the outside world; adapters in
//! `outbound` implement them (PostgreSQL, in-memory, callback sinks, the system clock). Every
//! method reports store trouble as `WorkflowError::Unavailable` (retry later) or
//! `WorkflowError::Internal` (a bug); the other variants each method may return are listed on it.

use std::future::Future;

use chrono::{DateTime, Utc};

use super::error::WorkflowError;
use super::model::{
    Approver, AuditVerification, CancelRequest, Comment, Condition, Decided, DecisionRequest,
    Delegation, Done, EventName, FailedDelivery, IdempotencyKey, InboxCursor, InboxPage, Instance,
    InstanceId, KeptAnswer, Lease, NewInstance, NewTemplate, Once, OutboxItem, OverdueStep,
    PendingStep, Readiness, ReadinessCheck, RoleName, StepId, StoreLoad, Template, TemplateFilter,
    TemplateId, TemplateUpdate, TriggerRequest, User, UserId,
};

/// The use cases of the engine: the driving port that inbound adapters depend on.
///
/// Each use case that changes state takes `once`: with a key, it is idempotent. The first
/// request with a key runs, and its answer (`Once::render` of the result) is kept with the key
/// in the transaction of its effect; a later request with the key gets `Done::Replayed` with
/// that answer and changes nothing, or `IdempotencyKeyReused` if it is another request. A
/// request whose key is being used by one still running waits for it to settle. Refusals keep
/// nothing: a retry runs again.
#[cfg_attr(test, mockall::automock)]
pub trait WorkflowUseCases: Send + Sync + 'static {
    /// Starts a workflow for an entity from its event's active template. `NoActiveTemplate`;
    /// `UnknownUser` (field `initiated_by`); `UserInactive` (the initiator); `Validation`
    /// (`entity_type` not the template's); `NoEligibleApprover` (inactive users are left out of
    /// the snapshot); `InstanceAlreadyActive`.
    fn trigger(
        &self,
        request: TriggerRequest,
        once: Option<Once<Instance>>,
    ) -> impl Future<Output = Result<Done<Instance>, WorkflowError>> + Send;

    /// Approves or rejects a step and returns the updated instance. In this order: `NotFound`
    /// (step); `UserInactive` (the actor, even if the step's snapshot holds it);
    /// `NotAnApprover`, or `UnknownUser` (field `acted_by_user_id`, an actor who is no user at
    /// all); `StepNotActionable`.
    fn decide(
        &self,
        request: DecisionRequest,
        once: Option<Once<Instance>>,
    ) -> impl Future<Output = Result<Done<Instance>, WorkflowError>> + Send;

    /// Cancels (withdraws) an active instance: its open steps are cancelled, the audit and the
    /// outbox record it; returns the updated instance. `NotFound` (instance); `NotTheInitiator`;
    /// `UnknownUser` (field `acted_by_user_id`, an actor who is no user at all);
    /// `InstanceNotActive`.
    fn cancel(
        &self,
        request: CancelRequest,
        once: Option<Once<Instance>>,
    ) -> impl Future<Output = Result<Done<Instance>, WorkflowError>> + Send;

    /// One instance with its steps and audit. `NotFound`.
    fn instance(
        &self,
        id: InstanceId,
    ) -> impl Future<Output = Result<Instance, WorkflowError>> + Send;

    /// Checks the instance's audit trail against its hash chain, as stored now: every entry's
    /// fields, the decided steps the decisions' entries cover, and the order. `NotFound`.
    fn verify_audit(
        &self,
        id: InstanceId,
    ) -> impl Future<Output = Result<AuditVerification, WorkflowError>> + Send;

    /// One template with its steps. `NotFound`.
    fn template(
        &self,
        id: TemplateId,
    ) -> impl Future<Output = Result<Template, WorkflowError>> + Send;

    /// Creates a template at version 1. `Validation` (names, steps); `TemplateConflict` (it is
    /// active and its event already has an active template).
    fn create_template(
        &self,
        template: NewTemplate,
        once: Option<Once<Template>>,
    ) -> impl Future<Output = Result<Done<Template>, WorkflowError>> + Send;

    /// Changes a template in place, as its next version. `NotFound`; `TemplateInUse`;
    /// `Validation`; `TemplateConflict`.
    fn update_template(
        &self,
        id: TemplateId,
        update: TemplateUpdate,
    ) -> impl Future<Output = Result<Template, WorkflowError>> + Send;

    /// The templates `filter` asks for, by id, each with its steps.
    fn templates(
        &self,
        filter: TemplateFilter,
    ) -> impl Future<Output = Result<Vec<Template>, WorkflowError>> + Send;

    /// Publishes `update` as the template's next version, also while instances use it: they
    /// keep the steps and version they copied; new triggers use the new version. `NotFound`;
    /// `Validation`; `TemplateConflict`.
    fn publish_version(
        &self,
        id: TemplateId,
        update: TemplateUpdate,
        once: Option<Once<Template>>,
    ) -> impl Future<Output = Result<Done<Template>, WorkflowError>> + Send;

    /// Template `id` exactly as it was at `version`. `NotFound` (template or version).
    fn template_version(
        &self,
        id: TemplateId,
        version: i32,
    ) -> impl Future<Output = Result<Template, WorkflowError>> + Send;

    /// A page of the steps awaiting `user`, oldest activation first, at most `limit`, starting
    /// after `after` (the `next` of the previous page) when given. `Validation` (field `limit`).
    fn pending_steps(
        &self,
        user: UserId,
        limit: u32,
        after: Option<InboxCursor>,
    ) -> impl Future<Output = Result<InboxPage, WorkflowError>> + Send;

    /// The instances matching `filter`, newest first (by id, descending), at most `limit`
    /// (1 to `MAX_SEARCH_LIMIT`), starting below `after` when given (the `next` of the previous
    /// page); each with its steps and no audit. `Validation` (field `limit`).
    fn search_instances(
        &self,
        filter: super::model::InstanceFilter,
        limit: u32,
        after: Option<InstanceId>,
    ) -> impl Future<Output = Result<super::model::InstancePage, WorkflowError>> + Send;

    /// Creates or replaces a user of the directory (name, roles, active flag); `true` if it was
    /// created. Later triggers use it; existing snapshots don't change. `Validation`.
    fn put_user(&self, user: User) -> impl Future<Output = Result<bool, WorkflowError>> + Send;

    /// One user of the directory, its roles sorted. `NotFound`.
    fn user(&self, id: UserId) -> impl Future<Output = Result<User, WorkflowError>> + Send;

    /// The users holding `role` (every user when `None`), by id, their roles sorted.
    fn users(
        &self,
        role: Option<RoleName>,
    ) -> impl Future<Output = Result<Vec<User>, WorkflowError>> + Send;

    /// Lets `to_user_id` act for `user_id` until `until`, replacing the user's delegation if
    /// any; returns it as stored (`created_at` is now). `NotFound` (the delegator);
    /// `Validation` (`until` not in the future, `to_user_id` the user themself or inactive); `UnknownUser` (field `to_user_id`); `DelegationCycle` (the delegate
    /// already delegates to the user, running).
    fn put_delegation(
        &self,
        user: UserId,
        to_user: UserId,
        until: DateTime<Utc>,
        reason: Option<Comment>,
    ) -> impl Future<Output = Result<Delegation, WorkflowError>> + Send;

    /// Ends the user's running delegation now. `NotFound` (the user, or no delegation runs).
    fn end_delegation(
        &self,
        user: UserId,
    ) -> impl Future<Output = Result<(), WorkflowError>> + Send;

    /// The user's running delegation, if any (also `None` for an unknown user: callers read
    /// the user first).
    fn delegation(
        &self,
        user: UserId,
    ) -> impl Future<Output = Result<Option<Delegation>, WorkflowError>> + Send;

    /// `Ok` when the store answers.
    fn health(&self) -> impl Future<Output = Result<(), WorkflowError>> + Send;

    /// Whether the service can do its work now: the store (`database`), then each event
    /// adapter's checks (`nats` when configured). Never fails: a failed check is in the answer.
    fn readiness(&self) -> impl Future<Output = Readiness> + Send;

    /// A sample of the store's load (outbox backlog, connection pool), for the metrics.
    fn store_load(&self) -> impl Future<Output = Result<StoreLoad, WorkflowError>> + Send;
}

/// The pure decision the repository runs on the locked instance inside its unit of work: it
/// returns the finished decision (the new state and every row to write), which the repository
/// only persists.
/// A decision run under the locks, given the acting user's directory entry as the same unit of
/// work read it: `None` for no such user, else whether the user is active; and, only when the
/// actor is not in the decided step's snapshot, the delegations to the actor from active users
/// (running or not: the decision judges them at its own time), else none.
pub type ActFn = Box<
    dyn FnOnce(&Instance, Option<bool>, &[Delegation]) -> Result<Decided, WorkflowError> + Send,
>;

pub type DecideFn = Box<dyn FnOnce(&Instance) -> Result<Decided, WorkflowError> + Send>;

/// The overdue handling the repository runs on the locked instance: the finished change, or
/// `None` when there is nothing (left) to do.
pub type OverdueFn = Box<dyn FnOnce(&Instance) -> Result<Option<Decided>, WorkflowError> + Send>;

/// Storage of templates, instances, audit and the callback outbox.
///
/// The units of work that write (`create_template`, `publish_version`, `create_instance`,
/// `decide`, `decide_instance`) take `once`: with a key, the unit of work first claims the key
/// (waiting while another unit of work holds it); if the key was kept by a committed request it
/// does nothing and returns `Done::Replayed` with that answer (`Once::replay`, so
/// `IdempotencyKeyReused` for another request); else it runs, and keeps `once.render` of its
/// result with the key before it commits. A refusal keeps nothing.
#[cfg_attr(test, mockall::automock)]
pub trait WorkflowRepository: Send + Sync + 'static {
    /// The active template for `event`, if any.
    fn active_template(
        &self,
        event: &EventName,
    ) -> impl Future<Output = Result<Option<Template>, WorkflowError>> + Send;

    /// The template with this id (active or not). `NotFound` if there is none.
    fn template(
        &self,
        id: TemplateId,
    ) -> impl Future<Output = Result<Template, WorkflowError>> + Send;

    /// Stores a new template (version 1) with its steps, and that version, and returns it with
    /// its id. `TemplateConflict` if it is active and its event already has an active template.
    fn create_template(
        &self,
        template: NewTemplate,
        once: Option<Once<Template>>,
    ) -> impl Future<Output = Result<Done<Template>, WorkflowError>> + Send;

    /// Replaces the template's contents and bumps its version, atomically with the check that no
    /// active instance uses it and with the record of the new version. `NotFound`;
    /// `TemplateInUse` if an active instance exists; `TemplateConflict` if activating it would
    /// give its event two active templates.
    fn update_template(
        &self,
        id: TemplateId,
        update: TemplateUpdate,
    ) -> impl Future<Output = Result<Template, WorkflowError>> + Send;

    /// The templates `filter` asks for (all criteria given must hold), by id, with their steps.
    fn templates(
        &self,
        filter: TemplateFilter,
    ) -> impl Future<Output = Result<Vec<Template>, WorkflowError>> + Send;

    /// As `update_template`, but allowed while active instances use the template (they keep
    /// their copied steps and version). `NotFound`; `TemplateConflict`.
    fn publish_version(
        &self,
        id: TemplateId,
        update: TemplateUpdate,
        once: Option<Once<Template>>,
    ) -> impl Future<Output = Result<Done<Template>, WorkflowError>> + Send;

    /// Template `id` exactly as it was at `version` (every write stores the version it makes).
    /// `NotFound` if the template or that version does not exist.
    fn template_version(
        &self,
        id: TemplateId,
        version: i32,
    ) -> impl Future<Output = Result<Template, WorkflowError>> + Send;

    /// Stores a new instance with its steps and audit entries, all or nothing, and returns it
    /// with ids assigned. `InstanceAlreadyActive` if an active instance exists for the same
    /// `(event, entity_type, entity_id)`; this holds under concurrency (one of two racing
    /// creations fails). `Unavailable` if the template is no longer active at the version the
    /// instance was built from (it changed meanwhile; a retry builds from the new version).
    fn create_instance(
        &self,
        instance: NewInstance,
        once: Option<Once<Instance>>,
    ) -> impl Future<Output = Result<Done<Instance>, WorkflowError>> + Send;

    /// The instance with its steps (by `step_order`) and audit (by id). `NotFound` if none.
    fn instance(
        &self,
        id: InstanceId,
    ) -> impl Future<Output = Result<Instance, WorkflowError>> + Send;

    /// The unit of work for a decision. Locks the step's instance, then its steps, so that no
    /// other decision on the same instance runs meanwhile; runs `decide` on the state read under
    /// the lock, with `actor`'s directory entry read in the same round trip (so that checking an
    /// inactive actor costs no extra one); stores what the finished decision lists (the changed steps, the instance, the
    /// audit entries and the callback events for the outbox) in one transaction; returns the
    /// decision's instance with the stored audit appended. If `decide` refuses,
    /// nothing is written and its error is returned. `NotFound` if the step does not exist.
    fn decide(
        &self,
        step: StepId,
        actor: UserId,
        decide: ActFn,
        once: Option<Once<Instance>>,
    ) -> impl Future<Output = Result<Done<Instance>, WorkflowError>> + Send;

    /// The same unit of work as [`decide`](Self::decide), for a change to a whole instance
    /// (a cancellation): locks the instance, then its steps, in the same order, runs `decide`
    /// on what it read, stores what it lists. `NotFound` if the instance does not exist.
    fn decide_instance(
        &self,
        instance: InstanceId,
        decide: DecideFn,
        once: Option<Once<Instance>>,
    ) -> impl Future<Output = Result<Done<Instance>, WorkflowError>> + Send;

    /// Awaiting steps whose `due_at` is at or before `now` and that were not handled yet, the
    /// earliest due first, at most `limit`, with whom their rule escalates to. Served by an
    /// index on `due_at` that holds only such steps.
    fn overdue_steps(
        &self,
        now: DateTime<Utc>,
        limit: u32,
    ) -> impl Future<Output = Result<Vec<OverdueStep>, WorkflowError>> + Send;

    /// The unit of work for an overdue step: locks its instance, then its steps, as a decision
    /// does, but gives up at once (`Ok(None)`) when another unit of work holds the instance's
    /// lock (several schedulers share the work that way and never wait on each other); runs
    /// `decide` on what it read and, if it returns a change, stores it in one transaction: the
    /// changed steps, the step's `overdue_at` and eligible users (with its new inbox lines),
    /// the instance, the audit entries and the events. Returns the instance as stored, or
    /// `None` when nothing was written. `NotFound` if the instance does not exist.
    fn handle_overdue(
        &self,
        step: OverdueStep,
        decide: OverdueFn,
    ) -> impl Future<Output = Result<Option<Instance>, WorkflowError>> + Send;

    /// What was kept for `key`, if anything: the answer of a committed request with it.
    fn kept_answer(
        &self,
        key: &IdempotencyKey,
    ) -> impl Future<Output = Result<Option<KeptAnswer>, WorkflowError>> + Send;

    /// Forgets the keys kept since before `before`, with their answers; returns how many.
    fn purge_kept_answers(
        &self,
        before: DateTime<Utc>,
    ) -> impl Future<Output = Result<u64, WorkflowError>> + Send;

    /// Steps awaiting `user`'s action (by snapshot), oldest activation first (then by step id),
    /// at most `limit`, only those after `after` when given. Served by one index range scan
    /// however long the inbox is.
    fn pending_steps(
        &self,
        user: UserId,
        limit: u32,
        after: Option<InboxCursor>,
    ) -> impl Future<Output = Result<Vec<PendingStep>, WorkflowError>> + Send;

    /// As [`pending_steps`](Self::pending_steps), merged with the steps awaiting each of
    /// `delegators` (users who delegate to `user`), each of those marked `on_behalf_of` its
    /// delegator: one page in the same order, a step once (as `user`'s own when `user` is in its
    /// snapshot, else for the lowest delegator id). A delegator's step is left out when `user`
    /// is in its snapshot (a delegate who is eligible acts as themself). One index range scan
    /// per user listed.
    fn delegated_pending_steps(
        &self,
        user: UserId,
        delegators: Vec<UserId>,
        limit: u32,
        after: Option<InboxCursor>,
    ) -> impl Future<Output = Result<Vec<PendingStep>, WorkflowError>> + Send;

    /// The newest instances matching `filter` whose id is below `after` (all, when `None`), by
    /// id descending, at most `limit`; each with its steps (by `step_order`) and an empty audit,
    /// all read in one snapshot. Served from indexes whatever the criteria.
    fn search_instances(
        &self,
        filter: super::model::InstanceFilter,
        limit: u32,
        after: Option<InstanceId>,
    ) -> impl Future<Output = Result<Vec<Instance>, WorkflowError>> + Send;

    /// Claims up to `limit` undelivered callback events due at `now`, oldest first, leasing them
    /// until `lease_until` so that no other dispatcher takes them meanwhile; each claim counts
    /// one more attempt, which is the claim's [`Lease`]. A claimed event that is neither
    /// delivered nor released comes due again when its lease ends (at-least-once).
    ///
    /// With `due_since`, only events that came due at or after it: a store may then look at the
    /// recent part of its queue only, which stays cheap however many events it has delivered.
    fn claim_callbacks(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: u32,
        due_since: Option<DateTime<Utc>>,
    ) -> impl Future<Output = Result<Vec<OutboxItem>, WorkflowError>> + Send;

    /// Marks the claimed events delivered at `now`, in one write; they are never claimed again.
    /// Fenced: an event whose lease ran out by `now`, or that was claimed again since (its
    /// attempts differ), is left as it is. Returns how many were marked.
    fn mark_callbacks_delivered(
        &self,
        leases: Vec<Lease>,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<u64, WorkflowError>> + Send;

    /// Records failed deliveries, in one write: each event comes due again at its `retry_at`,
    /// with its reason kept. Fenced as [`mark_callbacks_delivered`](Self::mark_callbacks_delivered).
    /// Returns how many were marked.
    fn mark_callbacks_failed(
        &self,
        failures: Vec<FailedDelivery>,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<u64, WorkflowError>> + Send;

    /// `Ok` when the store answers.
    fn health(&self) -> impl Future<Output = Result<(), WorkflowError>> + Send;

    /// The outbox backlog (undelivered events, the oldest one's time) and the connection pool's
    /// use (`None` for a store without a pool).
    fn load(&self) -> impl Future<Output = Result<StoreLoad, WorkflowError>> + Send;
}

/// The user directory: who the users are, and who holds a role now.
#[cfg_attr(test, mockall::automock)]
pub trait RoleResolver: Send + Sync + 'static {
    /// Creates `user`, or replaces its name, roles (roles are created as needed; one listed twice
    /// is held once) and active flag; returns `true` if it was created. Existing instances keep
    /// their snapshots.
    fn put_user(&self, user: User) -> impl Future<Output = Result<bool, WorkflowError>> + Send;

    /// Whether `user` is a known user.
    fn user_exists(&self, user: UserId)
    -> impl Future<Output = Result<bool, WorkflowError>> + Send;

    /// Whether `user` is active: `None` if it is no user at all. One cheap read (a primary-key
    /// lookup); a trigger asks it instead of `user_exists` (a decision gets the same answer
    /// from the repository's unit of work).
    fn user_active(
        &self,
        user: UserId,
    ) -> impl Future<Output = Result<Option<bool>, WorkflowError>> + Send;

    /// The user with its roles sorted, if it exists (active or not).
    fn user(&self, id: UserId) -> impl Future<Output = Result<Option<User>, WorkflowError>> + Send;

    /// The users holding `role` (every user when `None`), active or not, by id, each with its
    /// roles sorted; read in one snapshot.
    fn users(
        &self,
        role: Option<RoleName>,
    ) -> impl Future<Output = Result<Vec<User>, WorkflowError>> + Send;

    /// For each approver, in order, who may act for it now: the user itself if it exists and is
    /// active, or the role's current active members (empty for an unknown role or user).
    fn eligible_users(
        &self,
        approvers: &[Approver],
    ) -> impl Future<Output = Result<Vec<Vec<UserId>>, WorkflowError>> + Send;

    /// Stores `delegation` as its delegator's one delegation (replacing any), in one unit of
    /// work with these checks, in order: the delegator exists (`NotFound`); the delegate exists
    /// (`UnknownUser`, field `to_user_id`) and is active (`Validation`, field `to_user_id`); the
    /// delegate has no delegation to the delegator running at `now` (`DelegationCycle`). Two
    /// users delegating to each other at once: one of them is refused.
    fn put_delegation(
        &self,
        delegation: Delegation,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<(), WorkflowError>> + Send;

    /// Removes `user`'s delegation if it runs at `now` (one that has ended goes too); `true`
    /// if one ran.
    fn end_delegation(
        &self,
        user: UserId,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<bool, WorkflowError>> + Send;

    /// `user`'s delegation if it runs at `now`.
    fn delegation(
        &self,
        user: UserId,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<Option<Delegation>, WorkflowError>> + Send;

    /// The active users whose delegation to `user` runs at `now`, by id. One index lookup.
    fn delegators_of(
        &self,
        user: UserId,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<Vec<UserId>, WorkflowError>> + Send;
}

/// The source of every timestamp the core writes.
#[cfg_attr(test, mockall::automock)]
pub trait Clock: Send + Sync + 'static {
    /// The current time (microsecond precision, as stored).
    fn now(&self) -> DateTime<Utc>;
}

/// The language of step conditions (`when`), which the core stores but does not parse: checked
/// when a template is saved, evaluated at trigger time over the trigger's context. Both are
/// pure computations (no I/O), so the methods are synchronous.
#[cfg_attr(test, mockall::automock)]
pub trait ConditionEvaluator: Send + Sync + 'static {
    /// `Ok` if `condition` is a well-formed expression; otherwise `Err` with why not (the
    /// parse error, in words for the template's author).
    fn check(&self, condition: &Condition) -> Result<(), String>;

    /// What `condition` says about `context` (the trigger's context, `null` when it has none,
    /// bound to the name `context`): `Ok(true)` or `Ok(false)` when it yields a boolean; `Err`
    /// with why it could not be told (a field the context lacks, a value of the wrong type, a
    /// result that is not a boolean, a parse error).
    fn evaluate(&self, condition: &Condition, context: &serde_json::Value) -> Result<bool, String>;
}

/// Where events go once the change that caused them has committed (log, webhooks, NATS...).
#[cfg_attr(test, mockall::automock)]
pub trait Callbacks: Send + Sync + 'static {
    /// Delivers one event, or hands it durably to whoever delivers it further. An `Err` (a
    /// human-readable reason) makes the dispatcher retry later; the same event may be delivered
    /// more than once, so adapters and receivers must be idempotent on `item.event_id`.
    fn deliver(&self, item: &OutboxItem) -> impl Future<Output = Result<(), String>> + Send;

    /// Whether the adapter can deliver now: one check per broker it depends on (none for
    /// adapters that depend on nothing outside the process, the default).
    fn ready(&self) -> impl Future<Output = Vec<ReadinessCheck>> + Send {
        async { Vec::new() }
    }
}

/// What a round of events is handed to before its events go to the `Callbacks`: the webhook
/// fan-out, which turns the round's events into deliveries in one write rather than one per
/// event. An `Err` fails the whole round (retried later); it must be idempotent on the event
/// ids, since a round may be handed over again.
#[cfg_attr(test, mockall::automock)]
pub trait EventFanOut: Send + Sync + 'static {
    fn fan_out(&self, items: &[OutboxItem]) -> impl Future<Output = Result<(), String>> + Send;
}

/// No fan-out: every event goes to the `Callbacks` only.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoFanOut;

impl EventFanOut for NoFanOut {
    async fn fan_out(&self, _items: &[OutboxItem]) -> Result<(), String> {
        Ok(())
    }
}

/// No event adapter: for a service that is not serving (loading data, tests of the core). It
/// has nothing to check, and refuses every event, which then stays in the outbox.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoCallbacks;

impl Callbacks for NoCallbacks {
    async fn deliver(&self, _item: &OutboxItem) -> Result<(), String> {
        Err("no event adapter is plugged".to_owned())
    }
}
