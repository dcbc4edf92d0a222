SET lock_timeout = '2s';
SET statement_timeout = '60s';
CREATE UNIQUE INDEX CONCURRENTLY ix_projects_id ON projects (id);
ALTER TABLE projects ADD CONSTRAINT pk_projects PRIMARY KEY USING INDEX ix_projects_id;
