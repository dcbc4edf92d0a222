SET lock_timeout = '2s';
ALTER TABLE tasks ADD COLUMN note text;
