SET lock_timeout = '2s';
SET statement_timeout = '60s';
BEGIN;
ALTER TABLE tasks ADD COLUMN note text;
BEGIN;
ALTER TABLE tasks ADD COLUMN tag text;
COMMIT;
COMMIT;
