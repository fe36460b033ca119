-- Events: the approver notification (step.awaiting_action) and step.overdue join the outcomes
-- in the outbox; every event gets a public id, stable across redeliveries, and its place in its
-- instance's sequence of events (assigned under the instance's row lock, so without gaps).
ALTER TABLE workflow_callback_outbox
    DROP CONSTRAINT workflow_callback_outbox_kind_check,
    ADD CONSTRAINT workflow_callback_outbox_kind_check
        CHECK (kind IN ('on_approved', 'on_rejected', 'on_cancelled', 'step_awaiting_action',
                        'step_overdue')),
    ADD COLUMN event_id TEXT NOT NULL
        DEFAULT ('evt_' || replace(gen_random_uuid()::text, '-', '')),
    ADD COLUMN sequence BIGINT;
UPDATE workflow_callback_outbox AS o SET sequence = n.sequence
FROM (SELECT id, row_number() OVER (PARTITION BY instance_id ORDER BY id) AS sequence
      FROM workflow_callback_outbox) AS n
WHERE o.id = n.id;
ALTER TABLE workflow_callback_outbox ALTER COLUMN sequence SET NOT NULL;
-- The next event's sequence is read from here (max + 1), and no two events share one.
CREATE UNIQUE INDEX workflow_callback_outbox_sequence
    ON workflow_callback_outbox (instance_id, sequence);
