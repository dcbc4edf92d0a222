SET lock_timeout = '2s';
SET statement_timeout = '60s';
ALTER TYPE task_priority ADD VALUE 'urgent' AFTER 'high';
