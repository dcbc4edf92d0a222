SET lock_timeout = '2s';
SET statement_timeout = '60s';
ALTER TABLE tasks ADD CONSTRAINT ck_tasks_description_max_1000 CHECK (length(description) <= 1000) NOT VALID;
