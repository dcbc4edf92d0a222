SET lock_timeout = '2s';
SET statement_timeout = '60s';
REINDEX INDEX ix_tasks_status;
