-- The property records of the demo platform: what workflow instances are about.
-- Instances refer to them only through (entity_type, entity_id), so no foreign keys point here.

CREATE TABLE projects (
    id BIGINT PRIMARY KEY,
    name TEXT NOT NULL
);

CREATE TABLE units (
    id BIGINT PRIMARY KEY,
    project_id BIGINT NOT NULL REFERENCES projects (id),
    code TEXT NOT NULL UNIQUE,
    price_cents BIGINT NOT NULL CHECK (price_cents >= 0)
);
CREATE INDEX units_by_project ON units (project_id);

CREATE TABLE bookings (
    id BIGINT PRIMARY KEY,
    unit_id BIGINT NOT NULL REFERENCES units (id),
    customer_name TEXT NOT NULL,
    status TEXT NOT NULL
);
CREATE INDEX bookings_by_unit ON bookings (unit_id);

CREATE TABLE commissions (
    id BIGINT PRIMARY KEY,
    booking_id BIGINT NOT NULL REFERENCES bookings (id),
    agent_user_id BIGINT NOT NULL REFERENCES users (id),
    amount_cents BIGINT NOT NULL CHECK (amount_cents >= 0),
    status TEXT NOT NULL
);
CREATE INDEX commissions_by_booking ON commissions (booking_id);
