-- Workflow engine schema: directory (users, roles), templates, instances with their steps,
-- the append-only audit log and the callback outbox.

CREATE TABLE users (
    id BIGINT PRIMARY KEY CHECK (id > 0),
    name TEXT NOT NULL
);

CREATE TABLE roles (
    name TEXT PRIMARY KEY
);

CREATE TABLE user_roles (
    role TEXT NOT NULL REFERENCES roles (name) ON DELETE CASCADE,
    user_id BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    PRIMARY KEY (role, user_id)
);
CREATE INDEX user_roles_by_user ON user_roles (user_id);

CREATE TABLE workflow_templates (
    id BIGSERIAL PRIMARY KEY,
    name TEXT NOT NULL,
    event TEXT NOT NULL,
    entity_type TEXT NOT NULL,
    version INTEGER NOT NULL DEFAULT 1 CHECK (version > 0),
    is_active BOOLEAN NOT NULL DEFAULT TRUE
);
-- At most one active template per event; also the lookup index for triggers.
CREATE UNIQUE INDEX workflow_templates_one_active_per_event
    ON workflow_templates (event) WHERE is_active;

CREATE TABLE workflow_template_steps (
    template_id BIGINT NOT NULL REFERENCES workflow_templates (id) ON DELETE CASCADE,
    step_order INTEGER NOT NULL CHECK (step_order > 0),
    name TEXT NOT NULL,
    approver_user_id BIGINT,
    approver_role TEXT,
    PRIMARY KEY (template_id, step_order),
    CHECK ((approver_user_id IS NULL) <> (approver_role IS NULL))
);

CREATE TABLE workflow_instances (
    id BIGSERIAL PRIMARY KEY,
    template_id BIGINT NOT NULL REFERENCES workflow_templates (id),
    template_version INTEGER NOT NULL,
    event TEXT NOT NULL,
    entity_type TEXT NOT NULL,
    entity_id BIGINT NOT NULL CHECK (entity_id > 0),
    initiated_by BIGINT NOT NULL REFERENCES users (id),
    status TEXT NOT NULL
        CHECK (status IN ('pending', 'in_progress', 'approved', 'rejected', 'cancelled')),
    context JSONB,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    completed_at TIMESTAMPTZ
);
-- One active instance per event and entity: a second trigger is a unique violation.
CREATE UNIQUE INDEX workflow_instances_one_active
    ON workflow_instances (event, entity_type, entity_id)
    WHERE status IN ('pending', 'in_progress');
-- "Does this template have active instances?" without a scan.
CREATE INDEX workflow_instances_active_by_template
    ON workflow_instances (template_id)
    WHERE status IN ('pending', 'in_progress');

CREATE TABLE workflow_instance_steps (
    id BIGSERIAL PRIMARY KEY,
    instance_id BIGINT NOT NULL REFERENCES workflow_instances (id),
    step_order INTEGER NOT NULL CHECK (step_order > 0),
    name TEXT NOT NULL,
    approver_user_id BIGINT,
    approver_role TEXT,
    -- Who may act, frozen when the instance was created.
    eligible_user_ids BIGINT[] NOT NULL,
    status TEXT NOT NULL
        CHECK (status IN ('pending', 'awaiting_action', 'approved', 'rejected', 'cancelled')),
    acted_by_user_id BIGINT,
    comment TEXT,
    acted_at TIMESTAMPTZ,
    activated_at TIMESTAMPTZ,
    UNIQUE (instance_id, step_order),
    CHECK ((approver_user_id IS NULL) <> (approver_role IS NULL))
);

-- The inbox: one row per (eligible user, step awaiting action), derived from the steps by the
-- trigger below so it can't drift from them. Keyed so that a user's oldest awaiting steps are
-- one index range scan, whatever the size of the tables.
CREATE TABLE workflow_inbox (
    user_id BIGINT NOT NULL,
    activated_at TIMESTAMPTZ NOT NULL,
    step_id BIGINT NOT NULL REFERENCES workflow_instance_steps (id),
    PRIMARY KEY (user_id, activated_at, step_id)
);
CREATE INDEX workflow_inbox_by_step ON workflow_inbox (step_id);

CREATE FUNCTION workflow_inbox_sync() RETURNS trigger
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

CREATE TABLE workflow_audit_log (
    id BIGSERIAL PRIMARY KEY,
    instance_id BIGINT NOT NULL REFERENCES workflow_instances (id),
    step_id BIGINT REFERENCES workflow_instance_steps (id),
    action TEXT NOT NULL CHECK (action IN (
        'instance_created', 'step_activated', 'step_approved', 'step_rejected',
        'instance_approved', 'instance_rejected', 'instance_cancelled')),
    actor_user_id BIGINT,
    comment TEXT,
    at TIMESTAMPTZ NOT NULL
);
CREATE INDEX workflow_audit_log_by_instance ON workflow_audit_log (instance_id, id);

-- The audit log is append-only for everyone, superusers included.
CREATE FUNCTION workflow_audit_log_refuse_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'workflow_audit_log is append-only: % is not allowed', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$;
CREATE TRIGGER workflow_audit_log_no_update_delete
    BEFORE UPDATE OR DELETE ON workflow_audit_log
    FOR EACH ROW EXECUTE FUNCTION workflow_audit_log_refuse_change();
CREATE TRIGGER workflow_audit_log_no_truncate
    BEFORE TRUNCATE ON workflow_audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION workflow_audit_log_refuse_change();

CREATE TABLE workflow_callback_outbox (
    id BIGSERIAL PRIMARY KEY,
    instance_id BIGINT NOT NULL REFERENCES workflow_instances (id),
    kind TEXT NOT NULL CHECK (kind IN ('on_approved', 'on_rejected')),
    payload JSONB NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    due_at TIMESTAMPTZ NOT NULL,
    delivered_at TIMESTAMPTZ,
    last_error TEXT
);
-- Undelivered events by due time: what a dispatcher claims.
CREATE INDEX workflow_callback_outbox_due
    ON workflow_callback_outbox (due_at) WHERE delivered_at IS NULL;
