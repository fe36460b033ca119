DROP TABLE workflow_template_versions;
DROP FUNCTION workflow_template_versions_refuse_change();
ALTER TABLE workflow_templates DROP COLUMN forbid_self_approval;
