-- A subscription's deliveries are listed whole (no page), and every delivery is written twice
-- (inserted, then marked: a status change, so not a heap-only update), each time into every
-- index. The unique constraint's index, which leads with subscription_id too, finds the same
-- rows for the list (sorted by id after) and for the cascade when a subscription is deleted,
-- so this one only cost two index entries per delivery.
DROP INDEX webhook_deliveries_by_subscription;
