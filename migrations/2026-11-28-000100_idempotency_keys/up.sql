-- Idempotency keys: the answer of each keyed state-changing request, written in the transaction
-- of its effect, so a kept answer exists exactly when the effect committed. The primary key is
-- also the claim: a second request with the key waits on the first one's uncommitted row, then
-- finds its answer (or, if the first rolled back, claims the key itself).
CREATE TABLE idempotency_keys (
    key        TEXT        PRIMARY KEY CHECK (length(key) BETWEEN 1 AND 255),
    -- Digest of the request the key was first used for (method, path and body).
    request    TEXT        NOT NULL,
    -- The kept answer; set before the claiming transaction commits.
    status     INTEGER,
    body       TEXT,
    created_at TIMESTAMPTZ NOT NULL
);

-- The purge deletes by age.
CREATE INDEX idempotency_keys_by_age ON idempotency_keys (created_at);
