-- Back to approvals and rejections only; on_cancelled events can't stay in the outbox.
DELETE FROM workflow_callback_outbox WHERE kind = 'on_cancelled';
ALTER TABLE workflow_callback_outbox
    DROP CONSTRAINT workflow_callback_outbox_kind_check,
    ADD CONSTRAINT workflow_callback_outbox_kind_check
        CHECK (kind IN ('on_approved', 'on_rejected'));
