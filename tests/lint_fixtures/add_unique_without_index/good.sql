SET lock_timeout = '2s';
SET statement_timeout = '60s';
CREATE UNIQUE INDEX CONCURRENTLY ix_tasks_title_unique ON tasks (title);
ALTER TABLE tasks ADD CONSTRAINT uq_tasks_title UNIQUE USING INDEX ix_tasks_title_unique;
