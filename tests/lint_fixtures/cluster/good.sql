SET lock_timeout = '2s';
SET statement_timeout = '60s';
ALTER TABLE tasks CLUSTER ON ix_tasks_user_id;
