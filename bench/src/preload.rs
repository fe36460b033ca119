//! The data each scenario works on, written with bulk SQL straight into the service's tables:
//! a million instances through the API would take longer than all the measurements together.

use diesel_async::AsyncPgConnection;

use crate::db::{exec, scalar};

/// Where the decision benchmark's instances are: three ranges of `range` instances, each step 1
/// of instance `first_instance + k` being step id `first_step + 3k`.
pub struct DecisionLayout {
    pub first_instance: i64,
    pub first_step: i64,
    pub range: i64,
}

/// Three ranges of `range` three-step instances waiting on step 1: one range each for the
/// service, pgbench on the same SQL, and the one-round-trip ceiling, so no run decides a step
/// another already decided.
pub async fn decisions(conn: &mut AsyncPgConnection, range: i64) -> Result<DecisionLayout, String> {
    let total = range * 3;
    exec(
        conn,
        "INSERT INTO workflow_templates (id, name, event, entity_type, version, is_active)
         VALUES (100, 'Bench decisions', 'bench.decision', 'booking', 1, true);
         INSERT INTO workflow_template_steps (template_id, step_order, name, approver_user_id)
         VALUES (100, 1, 'First', 1), (100, 2, 'Second', 2), (100, 3, 'Third', 1);",
    )
    .await?;
    exec(
        conn,
        &format!(
            "INSERT INTO workflow_instances
                 (template_id, template_version, event, entity_type, entity_id, initiated_by,
                  status, created_at, updated_at)
             SELECT 100, 1, 'bench.decision', 'booking', g, 3, 'in_progress', now(), now()
             FROM generate_series(1, {total}) AS g ORDER BY g;
             INSERT INTO workflow_instance_steps
                 (instance_id, step_order, name, approver_user_id, eligible_user_ids, status,
                  activated_at)
             SELECT i.id, o, 'Step ' || o, CASE o WHEN 2 THEN 2 ELSE 1 END,
                    ARRAY[CASE o WHEN 2 THEN 2 ELSE 1 END]::bigint[],
                    CASE o WHEN 1 THEN 'awaiting_action' ELSE 'pending' END,
                    CASE o WHEN 1 THEN now() END
             FROM workflow_instances AS i CROSS JOIN generate_series(1, 3) AS o
             WHERE i.event = 'bench.decision'
             ORDER BY i.id, o;
             -- A placeholder hash: the benchmark never verifies these trails, and a decision
             -- chains to whatever hash the last entry has.
             INSERT INTO workflow_audit_log (instance_id, step_id, action, actor_user_id, at, hash)
             SELECT s.instance_id, CASE a WHEN 2 THEN s.id END,
                    (ARRAY['instance_created', 'step_activated'])[a], CASE a WHEN 1 THEN 3 END, now(),
                    sha256(s.instance_id::text::bytea)
             FROM workflow_instance_steps AS s
             JOIN workflow_instances AS i ON i.id = s.instance_id AND i.event = 'bench.decision'
             CROSS JOIN generate_series(1, 2) AS a
             WHERE s.step_order = 1
             ORDER BY s.instance_id, a;
             ANALYZE;"
        ),
    )
    .await?;
    let first_instance = scalar(
        conn,
        "SELECT min(id) AS v FROM workflow_instances WHERE event = 'bench.decision'",
    )
    .await?;
    let first_step = scalar(
        conn,
        &format!(
            "SELECT min(id) AS v FROM workflow_instance_steps WHERE instance_id = {first_instance}"
        ),
    )
    .await?;
    // The clients compute step ids from the layout, so a gap would send them to wrong steps.
    let spread = scalar(
        conn,
        "SELECT (max(s.id) - min(s.id) + 1) - count(*) AS v FROM workflow_instance_steps s
         JOIN workflow_instances i ON i.id = s.instance_id WHERE i.event = 'bench.decision'",
    )
    .await?;
    if spread != 0 {
        return Err("preloaded step ids are not contiguous".to_owned());
    }
    // pgbench has no shared counter: the ceiling and trigger scripts draw distinct steps and
    // entities from these inside their one statement (an init-plan, evaluated once).
    exec(
        conn,
        "CREATE SEQUENCE bench_ceiling_seq; CREATE SEQUENCE bench_same_sql_seq; \
         CREATE SEQUENCE bench_entity_seq START 2000000000;",
    )
    .await?;
    // The preload wrote gigabytes of WAL: without a checkpoint now, one would be spreading its
    // writes (and forcing full-page images of every page first touched after it began) over
    // whichever runs come first, which are the service's.
    exec(conn, "CHECKPOINT").await?;
    Ok(DecisionLayout {
        first_instance,
        first_step,
        range,
    })
}

/// Where the quorum benchmark's instances are: `range` two-step instances, step 1 of instance
/// `first_instance + k` being step id `first_step + 2k`, needing the approvals of users 1, 2
/// and 3.
pub struct QuorumLayout {
    pub first_step: i64,
    pub range: i64,
}

/// `range` two-step instances waiting on a quorum-3 step 1 (eligible: users 1, 2 and 3).
pub async fn quorum(conn: &mut AsyncPgConnection, range: i64) -> Result<QuorumLayout, String> {
    exec(
        conn,
        &format!(
            "INSERT INTO workflow_templates (id, name, event, entity_type, version, is_active)
                 VALUES (103, 'Bench quorum', 'bench.quorum', 'booking', 1, true);
             INSERT INTO workflow_template_steps
                 (template_id, step_order, name, approver_role, approver_user_id, quorum)
                 VALUES (103, 1, 'Three of three', 'sales_manager', NULL, 3),
                        (103, 2, 'Finance', NULL, 2, 1);
             INSERT INTO workflow_instances
                 (template_id, template_version, event, entity_type, entity_id, initiated_by,
                  status, created_at, updated_at)
             SELECT 103, 1, 'bench.quorum', 'booking', g, 3, 'in_progress', now(), now()
             FROM generate_series(1, {range}) AS g ORDER BY g;
             INSERT INTO workflow_instance_steps
                 (instance_id, step_order, name, approver_role, approver_user_id,
                  eligible_user_ids, status, activated_at, quorum)
             SELECT i.id, o, 'Step ' || o, CASE o WHEN 1 THEN 'sales_manager' END,
                    CASE o WHEN 2 THEN 2 END,
                    CASE o WHEN 1 THEN ARRAY[1, 2, 3] ELSE ARRAY[2] END::bigint[],
                    CASE o WHEN 1 THEN 'awaiting_action' ELSE 'pending' END,
                    CASE o WHEN 1 THEN now() END, CASE o WHEN 1 THEN 3 ELSE 1 END
             FROM workflow_instances AS i CROSS JOIN generate_series(1, 2) AS o
             WHERE i.event = 'bench.quorum'
             ORDER BY i.id, o;
             INSERT INTO workflow_audit_log (instance_id, step_id, action, actor_user_id, at, hash)
             SELECT s.instance_id, CASE a WHEN 2 THEN s.id END,
                    (ARRAY['instance_created', 'step_activated'])[a], CASE a WHEN 1 THEN 3 END, now(),
                    sha256(s.instance_id::text::bytea)
             FROM workflow_instance_steps AS s
             JOIN workflow_instances AS i ON i.id = s.instance_id AND i.event = 'bench.quorum'
             CROSS JOIN generate_series(1, 2) AS a
             WHERE s.step_order = 1
             ORDER BY s.instance_id, a;
             ANALYZE;"
        ),
    )
    .await?;
    let first_step = scalar(
        conn,
        "SELECT min(s.id) AS v FROM workflow_instance_steps s
         JOIN workflow_instances i ON i.id = s.instance_id WHERE i.event = 'bench.quorum'",
    )
    .await?;
    let spread = scalar(
        conn,
        "SELECT (max(s.id) - min(s.id) + 1) - count(*) AS v FROM workflow_instance_steps s
         JOIN workflow_instances i ON i.id = s.instance_id WHERE i.event = 'bench.quorum'",
    )
    .await?;
    if spread != 0 {
        return Err("preloaded quorum step ids are not contiguous".to_owned());
    }
    Ok(QuorumLayout { first_step, range })
}

/// 64 users sharing one role, and a template whose first step any of them may decide.
pub async fn contention(conn: &mut AsyncPgConnection) -> Result<(), String> {
    exec(
        conn,
        "INSERT INTO users (id, name) SELECT u, 'Contender ' || u FROM generate_series(5001, 5064) u;
         INSERT INTO roles (name) VALUES ('bench_contender');
         INSERT INTO user_roles (role, user_id) SELECT 'bench_contender', u FROM generate_series(5001, 5064) u;
         INSERT INTO workflow_templates (id, name, event, entity_type, version, is_active)
             VALUES (101, 'Bench contention', 'bench.contention', 'booking', 1, true);
         INSERT INTO workflow_template_steps (template_id, step_order, name, approver_role, approver_user_id)
             VALUES (101, 1, 'Anyone of 64', 'bench_contender', NULL), (101, 2, 'Finance', NULL, 2);",
    )
    .await
}

/// `instances` instances in a realistic status mix for the inbox read, with their inbox rows.
pub async fn inbox(conn: &mut AsyncPgConnection, instances: i64) -> Result<(), String> {
    // 1,000 users in 200 teams of 5; every instance has two team steps and one direct step.
    // The inbox trigger is off during the bulk insert; the inbox rows it would have written
    // are inserted afterwards in one set-based statement instead of one trigger call per step.
    exec(
        conn,
        &format!(
            "INSERT INTO users (id, name) SELECT u, 'Inbox user ' || u FROM generate_series(10001, 11000) u;
             INSERT INTO roles (name) SELECT 'team_' || t FROM generate_series(0, 199) t;
             INSERT INTO user_roles (role, user_id)
                 SELECT 'team_' || ((u - 10001) / 5), u FROM generate_series(10001, 11000) u;
             INSERT INTO workflow_templates (id, name, event, entity_type, version, is_active)
                 VALUES (102, 'Bench inbox', 'bench.inbox', 'unit', 1, true);
             INSERT INTO workflow_template_steps (template_id, step_order, name, approver_role, approver_user_id)
                 VALUES (102, 1, 'Team review', 'team_0', NULL), (102, 2, 'Second team', 'team_1', NULL),
                        (102, 3, 'Owner', NULL, 10001);
             -- Status mix by g % 10: 0-2 at step 1, 3-4 at step 2, 5 at step 3 (in progress);
             -- 6-7 approved; 8-9 rejected at step 2.
             INSERT INTO workflow_instances
                 (template_id, template_version, event, entity_type, entity_id, initiated_by,
                  status, created_at, updated_at, completed_at)
             SELECT 102, 1, 'bench.inbox', 'unit', g, 10001 + (g % 1000),
                    CASE WHEN g % 10 <= 5 THEN 'in_progress' WHEN g % 10 <= 7 THEN 'approved' ELSE 'rejected' END,
                    now() - make_interval(secs => g), now() - make_interval(secs => g),
                    CASE WHEN g % 10 >= 6 THEN now() - make_interval(secs => g) END
             FROM generate_series(1, {instances}) AS g ORDER BY g;
             ALTER TABLE workflow_instance_steps DISABLE TRIGGER workflow_inbox_sync;
             INSERT INTO workflow_instance_steps
                 (instance_id, step_order, name, approver_user_id, approver_role, eligible_user_ids,
                  status, acted_by_user_id, acted_at, activated_at)
             SELECT i.id, o, 'Step ' || o,
                    CASE o WHEN 3 THEN 10001 + (i.entity_id % 1000) END,
                    CASE o WHEN 1 THEN 'team_' || (i.entity_id % 200)
                           WHEN 2 THEN 'team_' || ((i.entity_id * 7 + 3) % 200) END,
                    CASE o WHEN 1 THEN ARRAY(SELECT 10001 + (i.entity_id % 200) * 5 + k FROM generate_series(0, 4) k)
                           WHEN 2 THEN ARRAY(SELECT 10001 + ((i.entity_id * 7 + 3) % 200) * 5 + k FROM generate_series(0, 4) k)
                           ELSE ARRAY[10001 + (i.entity_id % 1000)] END::bigint[],
                    st.status,
                    CASE WHEN st.status IN ('approved', 'rejected') THEN 10001 END,
                    CASE WHEN st.status IN ('approved', 'rejected') THEN i.created_at END,
                    CASE WHEN st.status <> 'pending' THEN i.created_at END
             FROM workflow_instances AS i
             CROSS JOIN generate_series(1, 3) AS o
             CROSS JOIN LATERAL (SELECT CASE
                 WHEN i.entity_id % 10 <= 2 THEN (ARRAY['awaiting_action', 'pending', 'pending'])[o]
                 WHEN i.entity_id % 10 <= 4 THEN (ARRAY['approved', 'awaiting_action', 'pending'])[o]
                 WHEN i.entity_id % 10 = 5 THEN (ARRAY['approved', 'approved', 'awaiting_action'])[o]
                 WHEN i.entity_id % 10 <= 7 THEN 'approved'
                 ELSE (ARRAY['approved', 'rejected', 'cancelled'])[o] END AS status) AS st
             WHERE i.event = 'bench.inbox'
             ORDER BY i.id, o;
             ALTER TABLE workflow_instance_steps ENABLE TRIGGER workflow_inbox_sync;
             INSERT INTO workflow_inbox (user_id, activated_at, step_id)
             SELECT DISTINCT u, s.activated_at, s.id
             FROM workflow_instance_steps s
             JOIN workflow_instances i ON i.id = s.instance_id AND i.event = 'bench.inbox'
             CROSS JOIN LATERAL unnest(s.eligible_user_ids) AS u
             WHERE s.status = 'awaiting_action';
             ANALYZE;"
        ),
    )
    .await
}

/// The busiest approver: user `BUSY_APPROVER`, the direct approver of `steps` one-step requests
/// all awaiting them, activated a second apart (the inbox trigger writes their inbox rows).
pub async fn busy_approver(conn: &mut AsyncPgConnection, steps: i64) -> Result<(), String> {
    exec(
        conn,
        &format!(
            "INSERT INTO users (id, name) VALUES ({BUSY_APPROVER}, 'Busy approver');
             INSERT INTO workflow_templates (id, name, event, entity_type, version, is_active)
                 VALUES (104, 'Bench busy approver', 'bench.busy', 'listing', 1, true);
             INSERT INTO workflow_template_steps (template_id, step_order, name, approver_user_id)
                 VALUES (104, 1, 'Sign-off', {BUSY_APPROVER});
             INSERT INTO workflow_instances
                 (template_id, template_version, event, entity_type, entity_id, initiated_by,
                  status, created_at, updated_at)
             SELECT 104, 1, 'bench.busy', 'listing', g, 1, 'in_progress',
                    now() - make_interval(secs => g), now() - make_interval(secs => g)
             FROM generate_series(1, {steps}) AS g ORDER BY g;
             INSERT INTO workflow_instance_steps
                 (instance_id, step_order, name, approver_user_id, eligible_user_ids, status, activated_at)
             SELECT i.id, 1, 'Sign-off', {BUSY_APPROVER}, ARRAY[{BUSY_APPROVER}]::bigint[],
                    'awaiting_action', i.created_at
             FROM workflow_instances AS i WHERE i.event = 'bench.busy' ORDER BY i.id;
             ANALYZE;"
        ),
    )
    .await
}

/// The user whose inbox holds the busy approver's steps.
pub const BUSY_APPROVER: i64 = 12001;
