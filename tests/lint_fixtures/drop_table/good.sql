SET lock_timeout = '2s';
SET statement_timeout = '60s';
CREATE TABLE drafts (id bigint PRIMARY KEY);
DROP TABLE drafts;
