ALTER TABLE workflow_instances DROP COLUMN last_event_sequence;
