SET lock_timeout = '2s';
SET statement_timeout = '60s';
CREATE TABLE notes (id bigint PRIMARY KEY, body text);
ALTER TABLE notes DROP COLUMN body;
