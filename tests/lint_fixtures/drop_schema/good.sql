SET lock_timeout = '2s';
SET statement_timeout = '60s';
REVOKE USAGE ON SCHEMA reporting FROM PUBLIC;
