-- Going back loses the conditions and the record of skipped steps: the audit log is
-- append-only, so a database that has any can't go back (the constraint below refuses it).
ALTER TABLE workflow_audit_log
    DROP CONSTRAINT workflow_audit_log_action_check,
    ADD CONSTRAINT workflow_audit_log_action_check CHECK (action IN (
        'instance_created', 'step_activated', 'approval_recorded', 'step_approved',
        'step_rejected', 'instance_approved', 'instance_rejected', 'instance_cancelled'));

ALTER TABLE workflow_instance_steps
    DROP CONSTRAINT workflow_instance_steps_status_check,
    ADD CONSTRAINT workflow_instance_steps_status_check CHECK (status IN (
        'pending', 'awaiting_action', 'approved', 'rejected', 'cancelled'));

ALTER TABLE workflow_template_steps DROP COLUMN when_condition;
