SET lock_timeout = '2s';
SET statement_timeout = '60s';
CLUSTER tasks USING ix_tasks_user_id;
