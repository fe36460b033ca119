ALTER DEFAULT PRIVILEGES IN SCHEMA public
    REVOKE USAGE, SELECT ON SEQUENCES FROM approvals_app;
ALTER DEFAULT PRIVILEGES IN SCHEMA public
    REVOKE SELECT, INSERT, UPDATE, DELETE ON TABLES FROM approvals_app;
REVOKE ALL ON ALL SEQUENCES IN SCHEMA public FROM approvals_app;
REVOKE ALL ON ALL TABLES IN SCHEMA public FROM approvals_app;
REVOKE USAGE ON SCHEMA public FROM approvals_app;
-- The role stays while another database on the server still grants it something.
DO $$
BEGIN
    DROP ROLE approvals_app;
EXCEPTION
    WHEN dependent_objects_still_exist OR undefined_object THEN NULL;
END;
$$;
