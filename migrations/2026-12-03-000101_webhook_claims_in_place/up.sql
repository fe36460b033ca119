-- A claim now changes only a delivery's attempt count and lease, no indexed column, and half of
-- each page is left free: the claim is then a heap-only update (no new index entries, the new
-- row version on the same page), which matters at one claim per event and subscription.
-- Applies to pages written from now on.
ALTER TABLE webhook_deliveries SET (fillfactor = 50);
