-- Audit you can prove: every audit entry carries `hash`, SHA-256 over the hash of the entry
-- before it (of the same instance) and this entry's fields, the entry of a decision covering
-- the decided step's data too. The service computes it (src/domain/audit_chain.rs) when it
-- appends entries under the instance's lock; GET /instances/{id}/audit/verify recomputes it.
--
-- The same encoding is written here in SQL, to hash the trails stored before this migration
-- (so that they verify) and for tools that check trails in bulk (scripts/test_chaos.sh):
-- fields in a fixed order, each `<byte length>:<text>;` or `-;` for none, numbers in decimal,
-- times in microseconds since the Unix epoch.

CREATE FUNCTION workflow_audit_field(value TEXT) RETURNS BYTEA
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT convert_to(
        CASE WHEN value IS NULL THEN '-;' ELSE octet_length(value) || ':' || value || ';' END,
        'UTF8')
$$;

CREATE FUNCTION workflow_audit_micros(at TIMESTAMPTZ) RETURNS TEXT
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT (extract(epoch FROM at) * 1000000)::BIGINT::TEXT
$$;

-- Where an instance's chain starts: its identity, so that a trail moved to another instance
-- does not verify.
CREATE FUNCTION workflow_audit_seed(i workflow_instances) RETURNS BYTEA
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT sha256(
        workflow_audit_field('approvals.audit.v1')
        || workflow_audit_field(i.template_id::TEXT)
        || workflow_audit_field(i.template_version::TEXT)
        || workflow_audit_field(i.event)
        || workflow_audit_field(i.entity_type)
        || workflow_audit_field(i.entity_id::TEXT)
        || workflow_audit_field(i.initiated_by::TEXT)
        || workflow_audit_field(workflow_audit_micros(i.created_at)))
$$;

-- The hash of entry `a` after `previous`; `s` is the step it names (NULLs for none).
CREATE FUNCTION workflow_audit_link(
    previous BYTEA, a workflow_audit_log, s workflow_instance_steps
) RETURNS BYTEA
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT sha256(
        previous
        || workflow_audit_field(s.step_order::TEXT)
        || workflow_audit_field(a.action)
        || workflow_audit_field(a.actor_user_id::TEXT)
        || workflow_audit_field(a.comment)
        || workflow_audit_field(workflow_audit_micros(a.at))
        || CASE WHEN a.action IN ('step_approved', 'step_rejected') AND s.id IS NOT NULL THEN
               workflow_audit_field(s.status)
               || workflow_audit_field(s.acted_by_user_id::TEXT)
               || workflow_audit_field(s.comment)
               || workflow_audit_field(workflow_audit_micros(s.acted_at))
               || workflow_audit_field(array_to_string(s.eligible_user_ids, ','))
           ELSE ''::BYTEA END)
$$;

-- The id of the first entry of instance `target` whose stored hash is not what its chain gives,
-- or NULL when the whole trail verifies: what GET .../audit/verify answers, in SQL.
CREATE FUNCTION workflow_audit_first_bad(target BIGINT) RETURNS BIGINT
LANGUAGE plpgsql STABLE AS $$
DECLARE
    previous BYTEA;
    entry RECORD;
BEGIN
    SELECT workflow_audit_seed(i) INTO previous FROM workflow_instances i WHERE i.id = target;
    FOR entry IN
        SELECT a AS audit, s AS step, s.id IS NULL AND a.step_id IS NOT NULL AS stray
        FROM workflow_audit_log a
        LEFT JOIN workflow_instance_steps s ON s.id = a.step_id AND s.instance_id = a.instance_id
        WHERE a.instance_id = target
        ORDER BY a.id
    LOOP
        previous := workflow_audit_link(previous, entry.audit, entry.step);
        IF entry.stray OR (entry.audit).hash IS DISTINCT FROM previous THEN
            RETURN (entry.audit).id;
        END IF;
    END LOOP;
    RETURN NULL;
END;
$$;

ALTER TABLE workflow_audit_log ADD COLUMN hash BYTEA;

-- The trails stored so far, hashed in order. The append-only trigger is off for this one
-- update (this migration runs as the table's owner, in one transaction).
ALTER TABLE workflow_audit_log DISABLE TRIGGER workflow_audit_log_no_update_delete;
DO $$
DECLARE
    inst workflow_instances;
    entry RECORD;
    previous BYTEA;
BEGIN
    FOR inst IN SELECT * FROM workflow_instances ORDER BY id LOOP
        previous := workflow_audit_seed(inst);
        FOR entry IN
            SELECT a AS audit, s AS step
            FROM workflow_audit_log a
            LEFT JOIN workflow_instance_steps s
                ON s.id = a.step_id AND s.instance_id = a.instance_id
            WHERE a.instance_id = inst.id
            ORDER BY a.id
        LOOP
            previous := workflow_audit_link(previous, entry.audit, entry.step);
            UPDATE workflow_audit_log SET hash = previous WHERE id = (entry.audit).id;
        END LOOP;
    END LOOP;
END;
$$;
ALTER TABLE workflow_audit_log ENABLE TRIGGER workflow_audit_log_no_update_delete;

ALTER TABLE workflow_audit_log
    ALTER COLUMN hash SET NOT NULL,
    ADD CONSTRAINT workflow_audit_log_hash_is_sha256 CHECK (octet_length(hash) = 32);

-- A decided step is history: its row can't be changed or removed by anyone (the table's owner
-- can still disable this trigger, and a superuser can skip it; the hash chain then shows it).
CREATE FUNCTION workflow_instance_steps_keep_decisions() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.status IN ('approved', 'rejected')
       AND (TG_OP = 'DELETE' OR NEW IS DISTINCT FROM OLD) THEN
        RAISE EXCEPTION 'step % is decided (%): its row can''t be changed', OLD.id, OLD.status
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF TG_OP = 'DELETE' THEN
        RETURN OLD;
    END IF;
    RETURN NEW;
END;
$$;
CREATE TRIGGER workflow_instance_steps_keep_decisions
    BEFORE UPDATE OR DELETE ON workflow_instance_steps
    FOR EACH ROW EXECUTE FUNCTION workflow_instance_steps_keep_decisions();
