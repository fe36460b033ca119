UPDATE workflow_callback_outbox SET due_at = $2, attempts = attempts + 1
WHERE id IN (SELECT id FROM workflow_callback_outbox
             WHERE delivered_at IS NULL AND due_at <= $1
             ORDER BY due_at, id LIMIT $3
             FOR UPDATE SKIP LOCKED)
RETURNING id, attempts, payload
