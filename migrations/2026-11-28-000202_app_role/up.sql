-- The role the service runs as, with least privilege: it logs in, but it is no superuser and
-- owns nothing, so it can't ALTER a table, disable a trigger, or SET session_replication_role;
-- it can read and append the audit log but not UPDATE, DELETE or TRUNCATE it; and the trigger
-- on steps refuses it (like everyone) any change to a decided step. Migrations keep running as
-- the owner (`approvals migrate`); `serve` as this role finds them applied and goes on.
--
-- Roles belong to the server, not to one database: another database on the same server may
-- have made it already (or be making it right now).
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'approvals_app') THEN
        CREATE ROLE approvals_app LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION
            NOBYPASSRLS;
    END IF;
EXCEPTION
    WHEN duplicate_object OR unique_violation THEN NULL;
END;
$$;

GRANT USAGE ON SCHEMA public TO approvals_app;
-- To see that no migration is pending before serving.
GRANT SELECT ON __diesel_schema_migrations TO approvals_app;

-- The directory and the templates are edited in place.
GRANT SELECT, INSERT, UPDATE, DELETE
    ON users, roles, user_roles, workflow_templates, workflow_template_steps TO approvals_app;
-- Template versions and the audit log are only ever appended to.
GRANT SELECT, INSERT ON workflow_template_versions, workflow_audit_log TO approvals_app;
-- Instances and their steps change state; none is ever removed. The inbox follows the steps
-- (its trigger runs as the service's role).
GRANT SELECT, INSERT, UPDATE ON workflow_instances, workflow_instance_steps TO approvals_app;
GRANT SELECT, INSERT, DELETE ON workflow_inbox TO approvals_app;
GRANT SELECT, INSERT, UPDATE ON workflow_callback_outbox TO approvals_app;
-- Idempotency keys are claimed, answered, and purged after a day.
GRANT SELECT, INSERT, UPDATE, DELETE ON idempotency_keys TO approvals_app;
-- The demo's property records (written by `seed`).
GRANT SELECT, INSERT, UPDATE ON projects, units, bookings, commissions TO approvals_app;
GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO approvals_app;

-- Tables and sequences that later migrations create get the ordinary rights; a migration
-- that wants less for its table revokes them there.
ALTER DEFAULT PRIVILEGES IN SCHEMA public
    GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO approvals_app;
ALTER DEFAULT PRIVILEGES IN SCHEMA public
    GRANT USAGE, SELECT ON SEQUENCES TO approvals_app;
