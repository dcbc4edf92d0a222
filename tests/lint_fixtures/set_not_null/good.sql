SET lock_timeout = '2s';
SET statement_timeout = '60s';
ALTER TABLE tasks ADD CONSTRAINT ck_tasks_description_not_null CHECK (description IS NOT NULL) NOT VALID;
ALTER TABLE tasks VALIDATE CONSTRAINT ck_tasks_description_not_null;
ALTER TABLE tasks ALTER COLUMN description SET NOT NULL;
