-- Answers in the order claimed (oldest due first), as the in-memory store does.
-- `$4` bounds the scan from below when set (a round for events that came due lately): every
-- claim and every delivery leaves a dead entry in the due index at the event's old due time,
-- there until a vacuum, and a scan from the start of the index steps over all of them. The
-- bound is a stable expression, so it is an index condition, not a filter.
WITH due AS (
    SELECT id, due_at FROM workflow_callback_outbox
    WHERE delivered_at IS NULL AND due_at <= $1
        AND due_at >= COALESCE($4::timestamptz, '-infinity'::timestamptz)
    ORDER BY due_at, id LIMIT $3
    FOR UPDATE SKIP LOCKED
), claimed AS (
    UPDATE workflow_callback_outbox AS o SET due_at = $2, attempts = o.attempts + 1
    FROM due WHERE o.id = due.id
    RETURNING o.id, o.attempts, o.payload, o.event_id, o.sequence, due.due_at AS was_due
)
SELECT id, attempts, payload, event_id, sequence FROM claimed ORDER BY was_due, id
