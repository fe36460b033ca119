DROP TRIGGER workflow_instance_steps_keep_decisions ON workflow_instance_steps;
DROP FUNCTION workflow_instance_steps_keep_decisions();
DROP FUNCTION workflow_audit_first_bad(BIGINT);
DROP FUNCTION workflow_audit_link(BYTEA, workflow_audit_log, workflow_instance_steps);
DROP FUNCTION workflow_audit_seed(workflow_instances);
DROP FUNCTION workflow_audit_micros(TIMESTAMPTZ);
DROP FUNCTION workflow_audit_field(TEXT);
ALTER TABLE workflow_audit_log DROP COLUMN hash;
