SET lock_timeout = '2s';
SET statement_timeout = '60s';
ALTER TABLE tasks ADD COLUMN meta jsonb;
