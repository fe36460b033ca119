WITH changed AS (
    UPDATE workflow_instance_steps AS s
    SET status = v.status, acted_by_user_id = v.acted_by_user_id, comment = v.comment,
        acted_at = v.acted_at, activated_at = v.activated_at, approvals = v.approvals,
        due_at = v.due_at
    FROM unnest($2::int8[], $3::text[], $4::int8[], $5::text[], $6::timestamptz[],
                $7::timestamptz[], $20::jsonb[], $22::timestamptz[])
         AS v(id, status, acted_by_user_id, comment, acted_at, activated_at, approvals, due_at)
    WHERE s.id = v.id
    RETURNING s.id
), instance AS (
    -- The events below take the next numbers of the instance's sequence, whose last number is
    -- kept on this row (locked by the reads before this statement).
    UPDATE workflow_instances SET status = $8, updated_at = $9, completed_at = $10,
        last_event_sequence = last_event_sequence + cardinality($16::text[])
    WHERE id = $1
    RETURNING id, last_event_sequence - cardinality($16::text[]) AS sequence_before
), audit AS (
    INSERT INTO workflow_audit_log (instance_id, step_id, action, actor_user_id, comment, at, hash,
                                    on_behalf_of)
    SELECT $1, v.step_id, v.action, v.actor_user_id, v.comment, v.at, v.hash, v.on_behalf_of
    FROM unnest($11::int8[], $12::text[], $13::int8[], $14::text[], $15::timestamptz[],
                $19::bytea[], $21::int8[])
         WITH ORDINALITY AS v(step_id, action, actor_user_id, comment, at, hash, on_behalf_of, n)
    ORDER BY v.n
    RETURNING id, instance_id, step_id, action, actor_user_id, comment, at, hash, on_behalf_of
), outbox AS (
    INSERT INTO workflow_callback_outbox (instance_id, kind, payload, created_at, due_at, sequence)
    SELECT $1, v.kind, v.payload, v.at, v.at, instance.sequence_before + v.n
    FROM instance,
         unnest($16::text[], $17::jsonb[], $18::timestamptz[])
         WITH ORDINALITY AS v(kind, payload, at, n)
    RETURNING id
)
SELECT id, instance_id, step_id, action, actor_user_id, comment, at, hash, on_behalf_of
FROM workflow_audit_log WHERE instance_id = $1
UNION ALL
SELECT id, instance_id, step_id, action, actor_user_id, comment, at, hash, on_behalf_of
FROM audit
ORDER BY id
