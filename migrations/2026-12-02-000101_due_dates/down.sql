-- Going back loses the due dates and the record of escalations: the audit log is append-only,
-- so a database that has any can't go back (the constraint below refuses it).
ALTER TABLE workflow_audit_log
    DROP CONSTRAINT workflow_audit_log_action_check,
    ADD CONSTRAINT workflow_audit_log_action_check CHECK (action IN (
        'instance_created', 'step_activated', 'approval_recorded', 'step_approved',
        'step_rejected', 'instance_approved', 'instance_rejected', 'instance_cancelled',
        'step_skipped'));

DROP INDEX workflow_instance_steps_overdue;

ALTER TABLE workflow_instance_steps
    DROP CONSTRAINT workflow_instance_steps_on_overdue_check,
    DROP COLUMN due_in,
    DROP COLUMN on_overdue,
    DROP COLUMN escalate_to_user_id,
    DROP COLUMN escalate_to_role,
    DROP COLUMN due_at,
    DROP COLUMN overdue_at;

ALTER TABLE workflow_template_steps
    DROP CONSTRAINT workflow_template_steps_escalate_to_check,
    DROP CONSTRAINT workflow_template_steps_due_rule_check,
    DROP CONSTRAINT workflow_template_steps_on_overdue_check,
    DROP COLUMN due_in,
    DROP COLUMN on_overdue,
    DROP COLUMN escalate_to_user_id,
    DROP COLUMN escalate_to_role;
