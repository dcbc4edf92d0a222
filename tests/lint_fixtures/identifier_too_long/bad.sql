SET lock_timeout = '2s';
SET statement_timeout = '60s';
ALTER TABLE tasks ADD CONSTRAINT ck_tasks_description_must_never_be_longer_than_one_thousand_characters CHECK (length(description) <= 1000) NOT VALID;
