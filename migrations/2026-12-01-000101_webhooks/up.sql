-- Webhooks: subscriptions, and one delivery per (event, subscription), created after the
-- event's change has committed (by the outbox dispatcher) and sent by the webhook dispatcher.
CREATE TABLE webhook_subscriptions (
    id BIGSERIAL PRIMARY KEY,
    url TEXT NOT NULL,
    -- Published event types (instance.approved, ...).
    event_types TEXT[] NOT NULL CHECK (cardinality(event_types) > 0),
    -- Kept to sign every delivery; shown to the subscriber only when created.
    secret TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL
);

CREATE TABLE webhook_deliveries (
    id BIGSERIAL PRIMARY KEY,
    subscription_id BIGINT NOT NULL REFERENCES webhook_subscriptions (id) ON DELETE CASCADE,
    event_id TEXT NOT NULL,
    event_type TEXT NOT NULL,
    -- The envelope, exactly as sent (and signed) on every try.
    body TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'pending'
        CHECK (status IN ('pending', 'failed', 'delivered', 'dead')),
    -- Counts claims: a claim's lease is (id, attempts), so a later claim fences out an earlier.
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    last_status_code INTEGER,
    next_attempt_at TIMESTAMPTZ,
    -- Set while a dispatcher holds the delivery.
    leased_until TIMESTAMPTZ,
    delivered_at TIMESTAMPTZ,
    created_at TIMESTAMPTZ NOT NULL,
    -- The outbox may hand an event over more than once: one delivery per subscription.
    CONSTRAINT webhook_deliveries_once UNIQUE (subscription_id, event_id)
);

-- The dispatcher's claim: due deliveries, oldest first, only those still to send.
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at, id)
    WHERE status IN ('pending', 'failed');
-- A subscription's deliveries, newest first (the unique constraint's index leads with
-- subscription_id too, but is ordered by event id).
CREATE INDEX webhook_deliveries_by_subscription ON webhook_deliveries (subscription_id, id);

-- The service's role gets the ordinary rights on both (the default privileges).
