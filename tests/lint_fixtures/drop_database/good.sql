SET lock_timeout = '2s';
SET statement_timeout = '60s';
REVOKE CONNECT ON DATABASE analytics FROM PUBLIC;
