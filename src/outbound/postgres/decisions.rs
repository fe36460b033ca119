//! Outbound adapter, PostgreSQL: the decision's unit of work on an instance aggregate.
//!
//! Round trips are counted here, because they are most of a request's cost: a decision is
//! `BEGIN` and the two row-lock reads, pipelined (sent together, executed in order: the
//! instance row, then its step rows) with the actor's directory entry and the last audit hash
//! (the link the new entries chain to); one statement that writes the steps, the instance, the
//! audit entries and the outbox rows and returns the whole audit trail; `COMMIT`. Three round
//! trips, seven statements. The adapter only persists what the domain's `Decided` lists.
//!
//! A cancellation is the same unit of work on an instance named by its id rather than by one of
//! its steps: the same lock order (instance row, then step rows), so a cancel and a decision on
//! one instance queue behind each other and the later one sees the earlier one's outcome.

use chrono::{DateTime, Utc};
use diesel::pg::Pg;
use diesel::prelude::*;
use diesel::query_builder::AstPass;
use diesel::sql_types::{Array, BigInt, Bytea, Jsonb, Nullable, Text, Timestamptz};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};

use super::delegations::delegations_to;
use super::errors::TxError;
use super::idempotency::once_before_commit;
use super::outbox::payload;
use super::rows::{AuditRow, InstanceRow, StepRow, approvals_json, approver as approver_of};
use super::schema::{users, workflow_audit_log, workflow_instance_steps, workflow_instances};
use super::statement::{Statement, StaticStatement, no_such_placeholder};
use super::transaction;
use super::{Conn, PgStore, detached};
use crate::domain::model::{
    AuditHash, Decided, Done, Instance, InstanceId, Once, OverdueStep, StepId, UserId,
};
use crate::domain::ports::{ActFn, DecideFn, OverdueFn};
use crate::domain::{WorkflowError, audit_chain};

/// The decision's write, under the row locks: changed steps, the instance, audit and outbox in
/// one statement, answering with the instance's whole audit trail (old rows plus new).
const DECIDE_WRITE_SQL: &str = include_str!("sql/decide_write.sql");

pub(super) async fn decide(
    store: &PgStore,
    step: StepId,
    actor: UserId,
    decide: ActFn,
    once: Option<Once<Instance>>,
) -> Result<Done<Instance>, WorkflowError> {
    run(
        store,
        Work::Step {
            step,
            actor,
            decide,
        },
        once,
    )
    .await
}

/// The unit of work for a change to a whole instance (a cancellation): the same transaction,
/// lock order and write as a decision, only the instance is named by its own id.
pub(super) async fn decide_instance(
    store: &PgStore,
    instance: InstanceId,
    decide: DecideFn,
    once: Option<Once<Instance>>,
) -> Result<Done<Instance>, WorkflowError> {
    run(
        store,
        Work::Instance {
            id: instance,
            decide,
        },
        once,
    )
    .await
}

/// What a unit of work locks and runs.
enum Work {
    /// A decision on a step, by `actor`: locks the step's instance, reads the actor's entry.
    Step {
        step: StepId,
        actor: UserId,
        decide: ActFn,
    },
    /// A change to the instance itself.
    Instance { id: InstanceId, decide: DecideFn },
}

async fn run(
    store: &PgStore,
    work: Work,
    once: Option<Once<Instance>>,
) -> Result<Done<Instance>, WorkflowError> {
    let store = store.clone();
    // On a task of its own, so that a client hanging up can't cancel the transaction half-way.
    detached("decision", async move {
        store
            .with_write(async |conn, sent| {
                // A key is claimed before the row locks, so a retry waits for its first attempt
                // on the key and replays it, rather than queueing on the locks and being refused
                // by the state the first attempt left.
                // Without a key, the row-lock reads go out with `BEGIN`.
                let target = work.target();
                let keyed = once.is_some();
                transaction::pipelined(
                    conn,
                    async |shared| {
                        if keyed {
                            return Ok(None);
                        }
                        Ok(Some(lock(shared, target).await?))
                    },
                    async |conn, locked| {
                        once_before_commit(conn, sent, once, async |conn| {
                            decide_locked(conn, work, locked).await
                        })
                        .await
                    },
                )
                .await
            })
            .await
    })
    .await
}

/// What a unit of work locks: the instance of a step (and the actor's directory entry), or an
/// instance named by its id.
#[derive(Clone, Copy)]
enum Target {
    Step { step: StepId, actor: UserId },
    Instance(InstanceId),
}

impl Work {
    fn target(&self) -> Target {
        match self {
            Work::Step { step, actor, .. } => Target::Step {
                step: *step,
                actor: *actor,
            },
            Work::Instance { id, .. } => Target::Instance(*id),
        }
    }
}

/// What the row-lock reads of a [`Target`] found; `entry` (the actor's active flag) is read
/// for a step's decision only.
struct Locked {
    instances: Vec<InstanceRow>,
    steps: Vec<StepRow>,
    entry: Vec<bool>,
    last_hash: Vec<Vec<u8>>,
}

/// The row-lock reads of `target`, pipelined (they only read, so they may go out with `BEGIN`).
async fn lock(shared: &AsyncPgConnection, target: Target) -> QueryResult<Locked> {
    match target {
        Target::Step { step, actor } => lock_by_step(shared, step, actor).await,
        Target::Instance(id) => lock_by_id(shared, id).await,
    }
}

/// Locks the instance and its steps (unless `locked` already holds what the locks read), runs
/// `decide` on them and writes its outcome.
async fn decide_locked(
    conn: &mut Conn,
    work: Work,
    locked: Option<Locked>,
) -> Result<Instance, TxError> {
    let Locked {
        instances,
        steps,
        entry,
        last_hash,
    } = match locked {
        Some(locked) => locked,
        None => lock(conn, work.target()).await?,
    };
    let (row, decide): (_, DecideFn) = match work {
        Work::Step {
            step,
            actor,
            decide,
        } => {
            let row = instances
                .into_iter()
                .next()
                .ok_or_else(|| WorkflowError::not_found(format!("step {step}")))?;
            let active = entry.into_iter().next();
            // The one extra read of a delegate's decision, made only when the actor (a user)
            // is not in the step's snapshot: who delegates to it (indexed by delegate).
            let eligible = steps
                .iter()
                .any(|s| s.id == step.get() && s.eligible_user_ids.contains(&actor.get()));
            let delegations = if eligible || active.is_none() {
                Vec::new()
            } else {
                delegations_to(conn, actor).await?
            };
            (
                row,
                Box::new(move |i: &Instance| decide(i, active, &delegations)),
            )
        }
        Work::Instance { id, decide } => {
            let row = instances
                .into_iter()
                .next()
                .ok_or_else(|| WorkflowError::not_found(format!("instance {id}")))?;
            (row, decide)
        }
    };
    let instance_id = row.id;
    let decided = decide(&row.into_domain(steps, Vec::new())?)?;
    // Chained to the entry read under the lock: no other write to this trail can come between.
    let last_hash = last_hash
        .into_iter()
        .next()
        .map(|bytes| AuditHash::from_slice(&bytes).unwrap_or(AuditHash::from_bytes([0; 32])));
    let hashes = audit_chain::for_decision(last_hash, &decided)?;

    let write = DecideWrite::new(instance_id, &decided, &hashes)?;
    let audit: Vec<AuditRow> = Statement(write).load(conn).await?;
    let mut instance = decided.instance;
    instance.audit = audit
        .into_iter()
        .map(AuditRow::into_domain)
        .collect::<Result<_, _>>()?;
    Ok(instance)
}

/// The row-lock reads of a decision on `step`: its instance row, then the instance's step rows,
/// then (no lock) whether `actor` is an active user, and the hash of the instance's last audit
/// entry (read after the locks, so it is the last one: appending takes the same locks).
async fn lock_by_step(
    shared: &AsyncPgConnection,
    step: StepId,
    actor: UserId,
) -> QueryResult<Locked> {
    // Lock order: the instance row, then its step rows. Both reads are sent at once; the server
    // runs them in order, so every decision on an instance queues on the instance lock and the
    // decision below sees the winner's writes.
    // The step's instance id, as a subquery (aliased: the step lock reads the same table).
    let decided_step = diesel::alias!(workflow_instance_steps as decided_step);
    let owner = || {
        decided_step
            .filter(
                decided_step
                    .field(workflow_instance_steps::id)
                    .eq(step.get()),
            )
            .select(decided_step.field(workflow_instance_steps::instance_id))
            .single_value()
    };
    let lock_instance = workflow_instances::table
        .filter(workflow_instances::id.nullable().eq(owner()))
        .select(InstanceRow::as_select())
        .for_update()
        .load(&mut &*shared);
    let lock_steps = workflow_instance_steps::table
        .filter(workflow_instance_steps::instance_id.nullable().eq(owner()))
        .order(workflow_instance_steps::step_order)
        .select(StepRow::as_select())
        .for_update()
        .load(&mut &*shared);
    // Sent in the same batch, so an inactive actor is refused without another round trip.
    let actor_entry = users::table
        .filter(users::id.eq(actor.get()))
        .select(users::active)
        .load(&mut &*shared);
    let last_hash = workflow_audit_log::table
        .filter(workflow_audit_log::instance_id.nullable().eq(owner()))
        .order(workflow_audit_log::id.desc())
        .select(workflow_audit_log::hash)
        .limit(1)
        .load(&mut &*shared);
    let (instances, steps, entry, last_hash) =
        futures_util::future::try_join4(lock_instance, lock_steps, actor_entry, last_hash).await?;
    Ok(Locked {
        instances,
        steps,
        entry,
        last_hash,
    })
}

/// The same row-lock reads, in the same order, for the instance `id`, and its last audit hash.
async fn lock_by_id(shared: &AsyncPgConnection, id: InstanceId) -> QueryResult<Locked> {
    let lock_instance = workflow_instances::table
        .filter(workflow_instances::id.eq(id.get()))
        .select(InstanceRow::as_select())
        .for_update()
        .load(&mut &*shared);
    let lock_steps = workflow_instance_steps::table
        .filter(workflow_instance_steps::instance_id.eq(id.get()))
        .order(workflow_instance_steps::step_order)
        .select(StepRow::as_select())
        .for_update()
        .load(&mut &*shared);
    let last_hash = workflow_audit_log::table
        .filter(workflow_audit_log::instance_id.eq(id.get()))
        .order(workflow_audit_log::id.desc())
        .select(workflow_audit_log::hash)
        .limit(1)
        .load(&mut &*shared);
    let (instances, steps, last_hash) =
        futures_util::future::try_join3(lock_instance, lock_steps, last_hash).await?;
    Ok(Locked {
        instances,
        steps,
        entry: Vec::new(),
        last_hash,
    })
}

/// Binds of [`DECIDE_WRITE_SQL`].
struct DecideWrite {
    instance_id: i64,
    step_ids: Vec<i64>,
    step_statuses: Vec<&'static str>,
    step_actors: Vec<Option<i64>>,
    step_comments: Vec<Option<String>>,
    step_acted_at: Vec<Option<DateTime<Utc>>>,
    step_activated_at: Vec<Option<DateTime<Utc>>>,
    step_approvals: Vec<serde_json::Value>,
    /// Computed by the machine when it activates a step (its `due_in` after now).
    step_due_at: Vec<Option<DateTime<Utc>>>,
    instance_status: &'static str,
    updated_at: DateTime<Utc>,
    completed_at: Option<DateTime<Utc>>,
    audit_step_ids: Vec<Option<i64>>,
    audit_actions: Vec<&'static str>,
    audit_actors: Vec<Option<i64>>,
    audit_on_behalf_of: Vec<Option<i64>>,
    audit_comments: Vec<Option<String>>,
    audit_at: Vec<DateTime<Utc>>,
    audit_hashes: Vec<Vec<u8>>,
    callback_kinds: Vec<&'static str>,
    callback_payloads: Vec<serde_json::Value>,
    callback_at: Vec<DateTime<Utc>>,
}

impl DecideWrite {
    fn new(
        instance_id: i64,
        decided: &Decided,
        hashes: &[AuditHash],
    ) -> Result<Self, WorkflowError> {
        let changed = &decided.changed_steps;
        let audit = &decided.audit;
        let callbacks = &decided.callbacks;
        Ok(Self {
            instance_id,
            step_ids: changed.iter().map(|s| s.id.get()).collect(),
            step_statuses: changed.iter().map(|s| s.status.as_str()).collect(),
            step_actors: changed
                .iter()
                .map(|s| s.acted_by_user_id.map(UserId::get))
                .collect(),
            step_comments: changed.iter().map(|s| s.comment.clone()).collect(),
            step_acted_at: changed.iter().map(|s| s.acted_at).collect(),
            step_activated_at: changed.iter().map(|s| s.activated_at).collect(),
            step_approvals: changed
                .iter()
                .map(|s| approvals_json(&s.approvals))
                .collect::<Result<_, _>>()?,
            step_due_at: changed.iter().map(|s| s.due_at).collect(),
            instance_status: decided.instance.status.as_str(),
            updated_at: decided.instance.updated_at,
            completed_at: decided.instance.completed_at,
            audit_step_ids: audit.iter().map(|a| a.step_id.map(StepId::get)).collect(),
            audit_actions: audit.iter().map(|a| a.action.as_str()).collect(),
            audit_actors: audit
                .iter()
                .map(|a| a.actor_user_id.map(UserId::get))
                .collect(),
            audit_on_behalf_of: audit
                .iter()
                .map(|a| a.on_behalf_of.map(UserId::get))
                .collect(),
            audit_comments: audit.iter().map(|a| a.comment.clone()).collect(),
            audit_at: audit.iter().map(|a| a.at).collect(),
            audit_hashes: hashes.iter().map(|h| h.as_bytes().to_vec()).collect(),
            callback_kinds: callbacks.iter().map(|c| c.kind.as_str()).collect(),
            callback_payloads: callbacks.iter().map(payload).collect::<Result<_, _>>()?,
            callback_at: callbacks.iter().map(|c| c.at).collect(),
        })
    }
}

impl StaticStatement for DecideWrite {
    const SQL: &'static str = DECIDE_WRITE_SQL;

    fn bind<'b>(&'b self, n: usize, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        match n {
            1 => out.push_bind_param::<BigInt, _>(&self.instance_id),
            2 => out.push_bind_param::<Array<BigInt>, _>(&self.step_ids),
            3 => out.push_bind_param::<Array<Text>, _>(&self.step_statuses),
            4 => out.push_bind_param::<Array<Nullable<BigInt>>, _>(&self.step_actors),
            5 => out.push_bind_param::<Array<Nullable<Text>>, _>(&self.step_comments),
            6 => out.push_bind_param::<Array<Nullable<Timestamptz>>, _>(&self.step_acted_at),
            7 => out.push_bind_param::<Array<Nullable<Timestamptz>>, _>(&self.step_activated_at),
            8 => out.push_bind_param::<Text, _>(&self.instance_status),
            9 => out.push_bind_param::<Timestamptz, _>(&self.updated_at),
            10 => out.push_bind_param::<Nullable<Timestamptz>, _>(&self.completed_at),
            11 => out.push_bind_param::<Array<Nullable<BigInt>>, _>(&self.audit_step_ids),
            12 => out.push_bind_param::<Array<Text>, _>(&self.audit_actions),
            13 => out.push_bind_param::<Array<Nullable<BigInt>>, _>(&self.audit_actors),
            14 => out.push_bind_param::<Array<Nullable<Text>>, _>(&self.audit_comments),
            15 => out.push_bind_param::<Array<Timestamptz>, _>(&self.audit_at),
            16 => out.push_bind_param::<Array<Text>, _>(&self.callback_kinds),
            17 => out.push_bind_param::<Array<Jsonb>, _>(&self.callback_payloads),
            18 => out.push_bind_param::<Array<Timestamptz>, _>(&self.callback_at),
            19 => out.push_bind_param::<Array<Bytea>, _>(&self.audit_hashes),
            20 => out.push_bind_param::<Array<Jsonb>, _>(&self.step_approvals),
            21 => out.push_bind_param::<Array<Nullable<BigInt>>, _>(&self.audit_on_behalf_of),
            22 => out.push_bind_param::<Array<Nullable<Timestamptz>>, _>(&self.step_due_at),
            other => Err(no_such_placeholder(other)),
        }
    }
}

/// Marks an overdue step handled and writes its eligible users, with an inbox line for each
/// user added (the inbox trigger follows status and approvals only). Run before the decision's
/// write, while the step still awaits action (a decided step's row can't change any more).
const OVERDUE_MARK_SQL: &str = "\
WITH step AS (
    UPDATE workflow_instance_steps SET overdue_at = $2, eligible_user_ids = $3
    WHERE id = $1
    RETURNING id, status, activated_at
)
INSERT INTO workflow_inbox (user_id, activated_at, step_id)
SELECT u, COALESCE(step.activated_at, $2), step.id
FROM step, unnest($4::int8[]) AS u
WHERE step.status = 'awaiting_action'
ON CONFLICT DO NOTHING";

/// Awaiting steps due by `$1` and not yet handled, at most `$2`, from the partial index.
const OVERDUE_STEPS_SQL: &str = include_str!("sql/overdue_steps.sql");

/// A row of [`OVERDUE_STEPS_SQL`].
#[derive(QueryableByName)]
struct OverdueRow {
    #[diesel(sql_type = BigInt)]
    id: i64,
    #[diesel(sql_type = BigInt)]
    instance_id: i64,
    #[diesel(sql_type = Nullable<Text>)]
    on_overdue: Option<String>,
    #[diesel(sql_type = Nullable<BigInt>)]
    escalate_to_user_id: Option<i64>,
    #[diesel(sql_type = Nullable<Text>)]
    escalate_to_role: Option<String>,
}

/// Awaiting steps due by `now` and not yet handled, the earliest due first.
pub(super) async fn overdue_steps(
    store: &PgStore,
    now: DateTime<Utc>,
    limit: u32,
) -> Result<Vec<OverdueStep>, WorkflowError> {
    let rows: Vec<OverdueRow> = store
        .with_conn(async |conn| {
            Ok(diesel::sql_query(OVERDUE_STEPS_SQL)
                .bind::<Timestamptz, _>(now)
                .bind::<BigInt, _>(i64::from(limit))
                .load(conn)
                .await?)
        })
        .await?;
    rows.into_iter()
        .map(|row| {
            let (step, instance) = (row.id, row.instance_id);
            let escalate_to = match row.on_overdue.as_deref() {
                Some("escalate") => {
                    Some(approver_of(row.escalate_to_user_id, row.escalate_to_role)?)
                }
                _ => None,
            };
            Ok(OverdueStep {
                instance_id: InstanceId::new(instance)
                    .map_err(|_| WorkflowError::internal("stored instance id is invalid"))?,
                step_id: StepId::new(step)
                    .map_err(|_| WorkflowError::internal("stored step id is invalid"))?,
                escalate_to,
            })
        })
        .collect()
}

/// Test support: the overdue query's generic plan, one line per element (see
/// [`generic_plan`](super::statement::generic_plan)).
#[cfg(any(test, feature = "test-support"))]
impl PgStore {
    pub async fn explain_overdue_steps(&self) -> Result<Vec<String>, WorkflowError> {
        super::statement::generic_plan(
            self,
            "overdue_steps_plan",
            "timestamptz, int8",
            OVERDUE_STEPS_SQL,
            "now(), 100",
        )
        .await
    }
}

/// The unit of work of an overdue step: the instance row lock taken with `SKIP LOCKED` (held by
/// another unit of work: `None`, it is that one's turn), then the step rows and the last audit
/// hash, as a cancellation reads them; `decide` on what was read; its change written.
pub(super) async fn handle_overdue(
    store: &PgStore,
    step: OverdueStep,
    decide: OverdueFn,
) -> Result<Option<Instance>, WorkflowError> {
    let store = store.clone();
    detached("overdue step", async move {
        store
            .with_write(async |conn, sent| {
                conn.transaction::<_, TxError, _>(async |conn| {
                    let handled = overdue_locked(conn, &step, decide).await?;
                    sent.mark();
                    Ok(handled)
                })
                .await
            })
            .await
    })
    .await
}

async fn overdue_locked(
    conn: &mut Conn,
    step: &OverdueStep,
    decide: OverdueFn,
) -> Result<Option<Instance>, TxError> {
    let id = step.instance_id.get();
    let locked: Vec<InstanceRow> = workflow_instances::table
        .filter(workflow_instances::id.eq(id))
        .select(InstanceRow::as_select())
        .for_update()
        .skip_locked()
        .load(conn)
        .await?;
    let Some(row) = locked.into_iter().next() else {
        return Ok(None);
    };
    let shared: &AsyncPgConnection = conn;
    let lock_steps = workflow_instance_steps::table
        .filter(workflow_instance_steps::instance_id.eq(id))
        .order(workflow_instance_steps::step_order)
        .select(StepRow::as_select())
        .for_update()
        .load(&mut &*shared);
    let last_hash = workflow_audit_log::table
        .filter(workflow_audit_log::instance_id.eq(id))
        .order(workflow_audit_log::id.desc())
        .select(workflow_audit_log::hash)
        .limit(1)
        .load::<Vec<u8>>(&mut &*shared);
    let (steps, last_hash) = futures_util::future::try_join(lock_steps, last_hash).await?;
    let before = row.into_domain(steps, Vec::new())?;
    let Some(decided) = decide(&before)? else {
        return Ok(None);
    };
    let handled = decided
        .instance
        .steps
        .iter()
        .find(|s| s.id == step.step_id)
        .ok_or_else(|| WorkflowError::internal(format!("step {} vanished", step.step_id)))?;
    let was = before
        .steps
        .iter()
        .find(|s| s.id == step.step_id)
        .map(|s| s.eligible_user_ids.clone())
        .unwrap_or_default();
    let eligible: Vec<i64> = handled.eligible_user_ids.iter().map(|u| u.get()).collect();
    let added: Vec<i64> = handled
        .eligible_user_ids
        .iter()
        .filter(|u| !was.contains(u))
        .map(|u| u.get())
        .collect();
    diesel::sql_query(OVERDUE_MARK_SQL)
        .bind::<BigInt, _>(step.step_id.get())
        .bind::<Nullable<Timestamptz>, _>(handled.overdue_at)
        .bind::<Array<BigInt>, _>(&eligible)
        .bind::<Array<BigInt>, _>(&added)
        .execute(conn)
        .await?;

    let last_hash = last_hash.into_iter().next().map(|bytes: Vec<u8>| {
        AuditHash::from_slice(&bytes).unwrap_or(AuditHash::from_bytes([0; 32]))
    });
    let hashes = audit_chain::for_decision(last_hash, &decided)?;
    let write = DecideWrite::new(id, &decided, &hashes)?;
    let audit: Vec<AuditRow> = Statement(write).load(conn).await?;
    let mut instance = decided.instance;
    instance.audit = audit
        .into_iter()
        .map(AuditRow::into_domain)
        .collect::<Result<_, _>>()?;
    Ok(Some(instance))
}
