SET lock_timeout = '2s';
SET statement_timeout = '60s';
BEGIN;
ALTER TABLE tasks ADD COLUMN note text;
SAVEPOINT tag;
ALTER TABLE tasks ADD COLUMN tag text;
RELEASE SAVEPOINT tag;
COMMIT;
