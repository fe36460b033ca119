-- A delivery is now created with the outcome of its first try, and a delivered one is never
-- written again: its pages need no room for later versions (the claims that are heap-only
-- updates are those of retries, a few), and its body, kept only to send it again, is not kept.
ALTER TABLE webhook_deliveries RESET (fillfactor);
ALTER TABLE webhook_deliveries ALTER COLUMN body DROP NOT NULL,
    ADD CONSTRAINT webhook_deliveries_body_to_send CHECK (body IS NOT NULL OR status = 'delivered');
