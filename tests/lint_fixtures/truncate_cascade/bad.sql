SET lock_timeout = '2s';
SET statement_timeout = '60s';
TRUNCATE projects CASCADE;
