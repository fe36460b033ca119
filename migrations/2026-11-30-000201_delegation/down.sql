-- The chain's link as before delegation (the quorum migration's), then the column and table.
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

ALTER TABLE workflow_audit_log DROP COLUMN on_behalf_of;
DROP TABLE workflow_delegations;
