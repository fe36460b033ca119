-- Awaiting steps due by $1 and not yet handled, the earliest due first, at most $2: exactly what
-- the partial index workflow_instance_steps_overdue holds. The status is written here, not
-- bound: only then does every plan prove the index's predicate, including the generic plan a
-- pooled session's prepared statement may settle on. With the status bound, that plan read the
-- whole step table on every poll.
SELECT id, instance_id, on_overdue, escalate_to_user_id, escalate_to_role
FROM workflow_instance_steps
WHERE status = 'awaiting_action' AND overdue_at IS NULL AND due_at <= $1
ORDER BY due_at, id
LIMIT $2
