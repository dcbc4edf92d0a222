SET lock_timeout = '2s';
SET statement_timeout = '60s';
ALTER DOMAIN positive ADD CONSTRAINT ck_positive CHECK (VALUE > 0);
