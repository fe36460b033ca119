-- Template versions and segregation of duties.
--
-- `forbid_self_approval`: when set, the initiator of an instance is left out of every step's
-- eligible-user snapshot. It defaults to false, so existing templates behave as before.
--
-- `workflow_template_versions` keeps each version of each template exactly as it was: its
-- name, event, entity type, flags and steps, written in the same transaction as the change
-- that made it (create, update or a new version). The steps are a JSON array of
-- `{step_order, name, approver_user_id, approver_role}`, the columns of
-- `workflow_template_steps`. Rows are never changed or removed.

ALTER TABLE workflow_templates
    ADD COLUMN forbid_self_approval BOOLEAN NOT NULL DEFAULT FALSE;

CREATE TABLE workflow_template_versions (
    template_id BIGINT NOT NULL REFERENCES workflow_templates (id),
    version INTEGER NOT NULL CHECK (version > 0),
    name TEXT NOT NULL,
    event TEXT NOT NULL,
    entity_type TEXT NOT NULL,
    is_active BOOLEAN NOT NULL,
    forbid_self_approval BOOLEAN NOT NULL,
    steps JSONB NOT NULL CHECK (jsonb_typeof(steps) = 'array' AND jsonb_array_length(steps) > 0),
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (template_id, version)
);

-- The current version of every existing template (earlier versions were not kept before).
INSERT INTO workflow_template_versions
    (template_id, version, name, event, entity_type, is_active, forbid_self_approval, steps)
SELECT t.id, t.version, t.name, t.event, t.entity_type, t.is_active, t.forbid_self_approval,
       (SELECT jsonb_agg(jsonb_build_object(
                   'step_order', s.step_order,
                   'name', s.name,
                   'approver_user_id', s.approver_user_id,
                   'approver_role', s.approver_role) ORDER BY s.step_order)
        FROM workflow_template_steps s
        WHERE s.template_id = t.id)
FROM workflow_templates t
WHERE EXISTS (SELECT 1 FROM workflow_template_steps s WHERE s.template_id = t.id);

-- A stored version is history: nobody may rewrite it.
CREATE FUNCTION workflow_template_versions_refuse_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'workflow_template_versions is append-only: % is not allowed', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$;
CREATE TRIGGER workflow_template_versions_no_update_delete
    BEFORE UPDATE OR DELETE ON workflow_template_versions
    FOR EACH ROW EXECUTE FUNCTION workflow_template_versions_refuse_change();
CREATE TRIGGER workflow_template_versions_no_truncate
    BEFORE TRUNCATE ON workflow_template_versions
    FOR EACH STATEMENT EXECUTE FUNCTION workflow_template_versions_refuse_change();
