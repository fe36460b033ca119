-- Answers in the order claimed (oldest due first), as the in-memory store does.
WITH due AS (
    SELECT id, due_at FROM workflow_callback_outbox
    WHERE delivered_at IS NULL AND due_at <= $1
    ORDER BY due_at, id LIMIT $3
    FOR UPDATE SKIP LOCKED
), claimed AS (
    UPDATE workflow_callback_outbox AS o SET due_at = $2, attempts = o.attempts + 1
    FROM due WHERE o.id = due.id
    RETURNING o.id, o.attempts, o.payload, o.event_id, o.sequence, due.due_at AS was_due
)
SELECT id, attempts, payload, event_id, sequence FROM claimed ORDER BY was_due, id
