-- Conditional steps: a template step may carry a condition (`when`, a CEL expression over the
-- trigger's context, kept as written). A step whose condition is false at trigger time is
-- created `skipped` and audited `step_skipped`; it is never activated.
ALTER TABLE workflow_template_steps ADD COLUMN when_condition TEXT;

ALTER TABLE workflow_instance_steps
    DROP CONSTRAINT workflow_instance_steps_status_check,
    ADD CONSTRAINT workflow_instance_steps_status_check CHECK (status IN (
        'pending', 'awaiting_action', 'approved', 'rejected', 'cancelled', 'skipped'));

ALTER TABLE workflow_audit_log
    DROP CONSTRAINT workflow_audit_log_action_check,
    ADD CONSTRAINT workflow_audit_log_action_check CHECK (action IN (
        'instance_created', 'step_activated', 'approval_recorded', 'step_approved',
        'step_rejected', 'instance_approved', 'instance_rejected', 'instance_cancelled',
        'step_skipped'));
