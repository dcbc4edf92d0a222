SET lock_timeout = '2s';
SET statement_timeout = '60s';
-- squawk-ignore ban-drop-table
DROP TABLE projects;
