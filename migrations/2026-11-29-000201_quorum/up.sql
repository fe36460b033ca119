-- Quorum steps: a step may need several distinct approvals before it is approved.
--
-- A template step's `quorum` is how many (1 by default, as before); NULL means "all", every
-- user of the step's snapshot. An instance step keeps the number resolved at trigger time and
-- the approvals given so far (a JSON array of {"user_id","comment","at"}, oldest first).
ALTER TABLE workflow_template_steps
    ADD COLUMN quorum INTEGER DEFAULT 1 CHECK (quorum > 0);
ALTER TABLE workflow_instance_steps
    ADD COLUMN quorum INTEGER NOT NULL DEFAULT 1 CHECK (quorum > 0),
    ADD COLUMN approvals JSONB NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(approvals) = 'array');

-- A partial approval of a quorum step is audited as `approval_recorded`.
ALTER TABLE workflow_audit_log
    DROP CONSTRAINT workflow_audit_log_action_check,
    ADD CONSTRAINT workflow_audit_log_action_check CHECK (action IN (
        'instance_created', 'step_activated', 'approval_recorded', 'step_approved',
        'step_rejected', 'instance_approved', 'instance_rejected', 'instance_cancelled'));

-- A user who approved a quorum step leaves its inbox, while the step waits for the others.
CREATE OR REPLACE FUNCTION workflow_inbox_sync() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND OLD.status = 'awaiting_action' AND NEW.status <> 'awaiting_action' THEN
        DELETE FROM workflow_inbox WHERE step_id = OLD.id;
    END IF;
    IF NEW.status = 'awaiting_action' AND (TG_OP = 'INSERT' OR OLD.status <> 'awaiting_action') THEN
        INSERT INTO workflow_inbox (user_id, activated_at, step_id)
        SELECT DISTINCT u, COALESCE(NEW.activated_at, now()), NEW.id
        FROM unnest(NEW.eligible_user_ids) AS u
        WHERE NOT NEW.approvals @> jsonb_build_array(jsonb_build_object('user_id', u));
    ELSIF TG_OP = 'UPDATE' AND NEW.status = 'awaiting_action'
          AND NEW.approvals IS DISTINCT FROM OLD.approvals THEN
        DELETE FROM workflow_inbox
        WHERE step_id = NEW.id
          AND NEW.approvals @> jsonb_build_array(jsonb_build_object('user_id', user_id));
    END IF;
    RETURN NULL;
END;
$$;
DROP TRIGGER workflow_inbox_sync ON workflow_instance_steps;
CREATE TRIGGER workflow_inbox_sync
    AFTER INSERT OR UPDATE OF status, approvals ON workflow_instance_steps
    FOR EACH ROW EXECUTE FUNCTION workflow_inbox_sync();

-- The chain's link as the service computes it (src/domain/audit_chain.rs): a decision's entry
-- also covers the step's approvals when it has any (count, then who, comment and when of
-- each), and an `approval_recorded` entry covers the step's record of its actor's approval.
-- Steps without approvals hash as before, so every stored trail keeps verifying.
CREATE OR REPLACE FUNCTION workflow_audit_approval(approval JSONB) RETURNS BYTEA
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN approval IS NULL THEN workflow_audit_field(NULL) ELSE
        workflow_audit_field(approval->>'user_id')
        || workflow_audit_field(approval->>'comment')
        || workflow_audit_field(workflow_audit_micros((approval->>'at')::TIMESTAMPTZ))
    END
$$;

CREATE OR REPLACE FUNCTION workflow_audit_link(
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
               || CASE WHEN jsonb_array_length(s.approvals) > 0 THEN
                      workflow_audit_field(jsonb_array_length(s.approvals)::TEXT)
                      || (SELECT string_agg(workflow_audit_approval(e), ''::BYTEA ORDER BY n)
                          FROM jsonb_array_elements(s.approvals) WITH ORDINALITY AS x(e, n))
                  ELSE ''::BYTEA END
           ELSE ''::BYTEA END
        || CASE WHEN a.action = 'approval_recorded' AND s.id IS NOT NULL THEN
               workflow_audit_approval((
                   SELECT e FROM jsonb_array_elements(s.approvals) AS e
                   WHERE (e->>'user_id')::BIGINT = a.actor_user_id
                   LIMIT 1))
           ELSE ''::BYTEA END)
$$;
