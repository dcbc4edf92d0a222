SET lock_timeout = '2s';
SET statement_timeout = '60s';
ALTER TABLE tasks ADD CONSTRAINT ck_tasks_title_short CHECK (length(title) < 150) NOT VALID;
ALTER TABLE tasks VALIDATE CONSTRAINT ck_tasks_title_short;
