-- The number of the last event written for each instance, kept on the instance row. A change
-- to an instance holds that row locked and rewrites it anyway, so its events are numbered from
-- here at no extra cost; reading the highest number back from the outbox instead made every
-- decision depend on how the outbox's plan was cached (a plan made while the outbox was small
-- scans it whole, and it only grows).
ALTER TABLE workflow_instances ADD COLUMN last_event_sequence BIGINT NOT NULL DEFAULT 0;
UPDATE workflow_instances AS i SET last_event_sequence = o.last
FROM (SELECT instance_id, max(sequence) AS last
      FROM workflow_callback_outbox GROUP BY instance_id) AS o
WHERE o.instance_id = i.id;
