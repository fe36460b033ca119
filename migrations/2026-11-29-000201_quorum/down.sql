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
           ELSE ''::BYTEA END)
$$;
DROP FUNCTION workflow_audit_approval(JSONB);
DROP TRIGGER workflow_inbox_sync ON workflow_instance_steps;
CREATE OR REPLACE FUNCTION workflow_inbox_sync() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND OLD.status = 'awaiting_action' AND NEW.status <> 'awaiting_action' THEN
        DELETE FROM workflow_inbox WHERE step_id = OLD.id;
    END IF;
    IF NEW.status = 'awaiting_action' AND (TG_OP = 'INSERT' OR OLD.status <> 'awaiting_action') THEN
        INSERT INTO workflow_inbox (user_id, activated_at, step_id)
        SELECT DISTINCT u, COALESCE(NEW.activated_at, now()), NEW.id
        FROM unnest(NEW.eligible_user_ids) AS u;
    END IF;
    RETURN NULL;
END;
$$;
CREATE TRIGGER workflow_inbox_sync
    AFTER INSERT OR UPDATE OF status ON workflow_instance_steps
    FOR EACH ROW EXECUTE FUNCTION workflow_inbox_sync();
ALTER TABLE workflow_audit_log
    DROP CONSTRAINT workflow_audit_log_action_check,
    ADD CONSTRAINT workflow_audit_log_action_check CHECK (action IN (
        'instance_created', 'step_activated', 'step_approved', 'step_rejected',
        'instance_approved', 'instance_rejected', 'instance_cancelled'));
ALTER TABLE workflow_instance_steps DROP COLUMN approvals, DROP COLUMN quorum;
ALTER TABLE workflow_template_steps DROP COLUMN quorum;
