-- Fenced: only rows still held by the claim that delivered them (same attempts, lease not over).
UPDATE workflow_callback_outbox AS o SET delivered_at = $3, last_error = NULL
FROM unnest($1::int8[], $2::int4[]) AS v(id, attempts)
WHERE o.id = v.id AND o.attempts = v.attempts AND o.delivered_at IS NULL AND o.due_at > $3
