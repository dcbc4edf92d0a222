SET lock_timeout = '2s';
SET statement_timeout = '60s';
CREATE TABLE projects (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, name varchar(100));
