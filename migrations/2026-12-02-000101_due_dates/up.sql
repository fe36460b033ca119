-- Due dates: a template step may say how long it may await action (`due_in`, an ISO 8601
-- duration kept as written) and what happens then (`on_overdue`, with `escalate_to` for
-- `escalate`). Instances copy the rule with their steps; a step gets its `due_at` when it is
-- activated, and `overdue_at` when the scheduler has handled it (once).
ALTER TABLE workflow_template_steps
    ADD COLUMN due_in TEXT,
    ADD COLUMN on_overdue TEXT,
    ADD COLUMN escalate_to_user_id BIGINT,
    ADD COLUMN escalate_to_role TEXT,
    ADD CONSTRAINT workflow_template_steps_on_overdue_check
        CHECK (on_overdue IN ('notify', 'escalate', 'reject')),
    ADD CONSTRAINT workflow_template_steps_due_rule_check CHECK (
        (due_in IS NULL AND on_overdue IS NULL) OR (due_in IS NOT NULL AND on_overdue IS NOT NULL)),
    ADD CONSTRAINT workflow_template_steps_escalate_to_check CHECK (
        (on_overdue = 'escalate') = (num_nonnulls(escalate_to_user_id, escalate_to_role) = 1)
        AND num_nonnulls(escalate_to_user_id, escalate_to_role) <= 1);

ALTER TABLE workflow_instance_steps
    ADD COLUMN due_in TEXT,
    ADD COLUMN on_overdue TEXT,
    ADD COLUMN escalate_to_user_id BIGINT,
    ADD COLUMN escalate_to_role TEXT,
    ADD COLUMN due_at TIMESTAMPTZ,
    ADD COLUMN overdue_at TIMESTAMPTZ,
    ADD CONSTRAINT workflow_instance_steps_on_overdue_check
        CHECK (on_overdue IN ('notify', 'escalate', 'reject'));

-- What the overdue scheduler looks for, and only that: awaiting steps with a due date not yet
-- handled. Small whatever the history, and read in due order.
CREATE INDEX workflow_instance_steps_overdue ON workflow_instance_steps (due_at)
    WHERE status = 'awaiting_action' AND overdue_at IS NULL AND due_at IS NOT NULL;

-- The engine escalating an overdue step adds users to its snapshot (`step_escalated`).
ALTER TABLE workflow_audit_log
    DROP CONSTRAINT workflow_audit_log_action_check,
    ADD CONSTRAINT workflow_audit_log_action_check CHECK (action IN (
        'instance_created', 'step_activated', 'approval_recorded', 'step_approved',
        'step_rejected', 'instance_approved', 'instance_rejected', 'instance_cancelled',
        'step_skipped', 'step_escalated'));
