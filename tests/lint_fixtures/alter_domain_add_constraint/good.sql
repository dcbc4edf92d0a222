SET lock_timeout = '2s';
SET statement_timeout = '60s';
ALTER TABLE tasks ADD CONSTRAINT ck_tasks_estimate_positive CHECK (estimate > 0) NOT VALID;
