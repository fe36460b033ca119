ALTER TABLE webhook_deliveries DROP CONSTRAINT webhook_deliveries_body_to_send;
UPDATE webhook_deliveries SET body = '' WHERE body IS NULL;
ALTER TABLE webhook_deliveries ALTER COLUMN body SET NOT NULL;
ALTER TABLE webhook_deliveries SET (fillfactor = 50);
