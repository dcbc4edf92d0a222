SET lock_timeout = '2s';
SET statement_timeout = '60s';
BEGIN;
ALTER TYPE task_priority ADD VALUE 'urgent' AFTER 'high';
UPDATE tasks SET priority = 'urgent' WHERE title LIKE '%!%';
COMMIT;
