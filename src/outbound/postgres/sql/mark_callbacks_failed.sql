-- Fenced as mark_callbacks_delivered.sql.
UPDATE workflow_callback_outbox AS o SET due_at = v.retry_at, last_error = v.error
FROM unnest($1::int8[], $2::int4[], $3::text[], $4::timestamptz[])
     AS v(id, attempts, error, retry_at)
WHERE o.id = v.id AND o.attempts = v.attempts AND o.delivered_at IS NULL AND o.due_at > $5
