SET lock_timeout = '2s';
SET statement_timeout = '60s';
ALTER TABLE projects ADD PRIMARY KEY (id);
