-- A cancelled instance sends its own outcome event, on_cancelled, through the outbox.
ALTER TABLE workflow_callback_outbox
    DROP CONSTRAINT workflow_callback_outbox_kind_check,
    ADD CONSTRAINT workflow_callback_outbox_kind_check
        CHECK (kind IN ('on_approved', 'on_rejected', 'on_cancelled'));
