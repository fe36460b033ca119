-- Delegation: a user lets another act for them until a time. One delegation per user (the
-- delegator is the key; a new one replaces it); it runs while now < until, now from the
-- service's clock. Looked up by delegate (the decision of an actor who is not eligible, the
-- delegate's inbox), so indexed by it.
CREATE TABLE workflow_delegations (
    user_id BIGINT PRIMARY KEY REFERENCES users (id),
    to_user_id BIGINT NOT NULL REFERENCES users (id),
    until TIMESTAMPTZ NOT NULL,
    reason TEXT,
    created_at TIMESTAMPTZ NOT NULL,
    CONSTRAINT workflow_delegations_not_to_self CHECK (user_id <> to_user_id)
);
CREATE INDEX workflow_delegations_by_delegate ON workflow_delegations (to_user_id, until);

-- A delegate's entry names the delegator it acted for.
ALTER TABLE workflow_audit_log ADD COLUMN on_behalf_of BIGINT;

-- The chain's link as the service computes it (src/domain/audit_chain.rs): a delegate's
-- approval on a step also covers who gave it (`acted_by`), and a delegate's entry the
-- delegator (`on_behalf_of`); both only when present, as tagged fields, so every stored trail
-- keeps verifying. An `approval_recorded` entry of a delegate covers the delegator's approval.
CREATE OR REPLACE FUNCTION workflow_audit_approval(approval JSONB) RETURNS BYTEA
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN approval IS NULL THEN workflow_audit_field(NULL) ELSE
        workflow_audit_field(approval->>'user_id')
        || workflow_audit_field(approval->>'comment')
        || workflow_audit_field(workflow_audit_micros((approval->>'at')::TIMESTAMPTZ))
        || CASE WHEN approval->>'acted_by' IS NOT NULL THEN
               workflow_audit_field('acted_by') || workflow_audit_field(approval->>'acted_by')
           ELSE ''::BYTEA END
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
                   WHERE (e->>'user_id')::BIGINT = COALESCE(a.on_behalf_of, a.actor_user_id)
                   LIMIT 1))
           ELSE ''::BYTEA END
        || CASE WHEN a.on_behalf_of IS NOT NULL THEN
               workflow_audit_field('on_behalf_of') || workflow_audit_field(a.on_behalf_of::TEXT)
           ELSE ''::BYTEA END)
$$;
