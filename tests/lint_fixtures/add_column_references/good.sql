SET lock_timeout = '2s';
SET statement_timeout = '60s';
ALTER TABLE tasks ADD COLUMN project_id bigint;
ALTER TABLE tasks ADD CONSTRAINT fk_tasks_project_id FOREIGN KEY (project_id) REFERENCES projects (id) NOT VALID;
ALTER TABLE tasks VALIDATE CONSTRAINT fk_tasks_project_id;
