-- Finding instances (GET /instances): each filter is one index whose rows for a value are kept
-- newest first, so "instances with this value, newest first, below this id" is one index range
-- read in order and stopped at the page size, however many instances there are. With no
-- filter, the primary key serves; with several, the planner takes the narrowest of these and
-- checks the others on the rows it reads.
CREATE INDEX workflow_instances_by_entity
    ON workflow_instances (entity_type, entity_id, id DESC);
CREATE INDEX workflow_instances_by_event
    ON workflow_instances (event, id DESC);
CREATE INDEX workflow_instances_by_status
    ON workflow_instances (status, id DESC);
CREATE INDEX workflow_instances_by_initiator
    ON workflow_instances (initiated_by, id DESC);
