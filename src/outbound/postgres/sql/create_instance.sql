WITH template AS (
    SELECT id FROM workflow_templates
    WHERE id = $1 AND version = $2 AND is_active
    FOR SHARE
), instance AS (
    -- Its events so far are those written below: an approver notification per step the
    -- trigger activated, and the outcome of an instance approved at once (every step skipped).
    -- Their count is the last number of its event sequence.
    INSERT INTO workflow_instances
        (template_id, template_version, event, entity_type, entity_id, initiated_by, status,
         context, created_at, updated_at, completed_at, last_event_sequence)
    SELECT template.id, $2, $3, $4, $5, $6, $7, $8, $9, $9, $24,
           (SELECT count(*) FROM unnest($15::text[]) AS s(status)
            WHERE s.status = 'awaiting_action')
           + CASE WHEN $7 = 'approved' THEN 1 ELSE 0 END
    FROM template
    RETURNING *
), steps AS (
    INSERT INTO workflow_instance_steps
        (instance_id, step_order, name, approver_user_id, approver_role, eligible_user_ids,
         status, activated_at, quorum, due_in, on_overdue, escalate_to_user_id,
         escalate_to_role, due_at)
    SELECT instance.id, v.step_order, v.name, v.approver_user_id, v.approver_role,
           v.eligible::bigint[], v.status, v.activated_at, v.quorum, v.due_in, v.on_overdue,
           v.escalate_to_user_id, v.escalate_to_role, v.due_at
    FROM instance,
         unnest($10::int4[], $11::text[], $12::int8[], $13::text[], $14::text[], $15::text[],
                $16::timestamptz[], $23::int4[], $25::text[], $26::text[], $27::int8[],
                $28::text[], $29::timestamptz[])
         AS v(step_order, name, approver_user_id, approver_role, eligible, status, activated_at,
              quorum, due_in, on_overdue, escalate_to_user_id, escalate_to_role, due_at)
    RETURNING *
), audit AS (
    INSERT INTO workflow_audit_log (instance_id, step_id, action, actor_user_id, comment, at, hash)
    SELECT instance.id, steps.id, v.action, v.actor_user_id, v.comment, v.at, v.hash
    FROM instance
    CROSS JOIN unnest($17::int4[], $18::text[], $19::int8[], $20::text[], $21::timestamptz[],
                      $22::bytea[])
         WITH ORDINALITY AS v(step_order, action, actor_user_id, comment, at, hash, n)
    LEFT JOIN steps ON steps.step_order = v.step_order
    ORDER BY v.n
    RETURNING *
), outbox AS (
    -- The approver notification of each step the trigger activated; the same payload as
    -- outbox.rs writes for a decision's events (its `CallbackPayload`).
    INSERT INTO workflow_callback_outbox (instance_id, kind, payload, created_at, due_at, sequence)
    SELECT instance.id, 'step_awaiting_action',
           jsonb_build_object(
               'kind', 'step_awaiting_action', 'instance_id', instance.id,
               'event', instance.event, 'entity_type', instance.entity_type,
               'entity_id', instance.entity_id, 'status', instance.status,
               'step', jsonb_build_object(
                   'id', steps.id, 'step_order', steps.step_order, 'name', steps.name,
                   'eligible_user_ids', to_jsonb(steps.eligible_user_ids)),
               'decided_by', instance.initiated_by, 'comment', NULL,
               'at', instance.created_at),
           instance.created_at, instance.created_at,
           row_number() OVER (ORDER BY steps.step_order)
    FROM instance JOIN steps ON steps.instance_id = instance.id
    WHERE steps.status = 'awaiting_action'
    UNION ALL
    -- An instance approved as it started (every step skipped) reports its outcome at once,
    -- caused by its initiator (machine::trigger_events says the same for the in-memory store).
    SELECT instance.id, 'on_approved',
           jsonb_build_object(
               'kind', 'on_approved', 'instance_id', instance.id,
               'event', instance.event, 'entity_type', instance.entity_type,
               'entity_id', instance.entity_id, 'status', instance.status,
               'decided_by', instance.initiated_by, 'comment', NULL,
               'at', instance.created_at),
           instance.created_at, instance.created_at, 1
    FROM instance
    WHERE instance.status = 'approved'
    RETURNING id
)
SELECT (SELECT to_jsonb(instance) FROM instance) AS instance,
       (SELECT jsonb_agg(steps ORDER BY step_order) FROM steps) AS steps,
       (SELECT jsonb_agg(audit ORDER BY id) FROM audit) AS audit
