SET lock_timeout = '2s';
SET statement_timeout = '60s';
CREATE TABLE labels (id bigint PRIMARY KEY);
ALTER TABLE labels RENAME TO tags;
