CREATE INDEX webhook_deliveries_by_subscription ON webhook_deliveries (subscription_id, id);
