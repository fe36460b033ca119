DELETE FROM workflow_callback_outbox WHERE kind IN ('step_awaiting_action', 'step_overdue');
DROP INDEX workflow_callback_outbox_sequence;
ALTER TABLE workflow_callback_outbox
    DROP COLUMN sequence,
    DROP COLUMN event_id,
    DROP CONSTRAINT workflow_callback_outbox_kind_check,
    ADD CONSTRAINT workflow_callback_outbox_kind_check
        CHECK (kind IN ('on_approved', 'on_rejected', 'on_cancelled'));
