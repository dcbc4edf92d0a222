SET lock_timeout = '2s';
SET statement_timeout = '60s';
-- todo-data: ignore drop_table
DROP TABLE projects;
