-- Users can be deactivated: an inactive user stays in the directory (and in the snapshots taken
-- while it was active) but is left out of new snapshots and may neither trigger nor decide.
ALTER TABLE users ADD COLUMN active BOOLEAN NOT NULL DEFAULT true;
