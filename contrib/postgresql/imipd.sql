-- A PostgreSQL role and database for imipd with least privileges
-- (README "Several instances on one PostgreSQL database"). Run once, as a
-- superuser, on the database server:
--
--   runuser -u postgres -- psql -v ON_ERROR_STOP=1 -f imipd.sql
--
-- then give the role a password (psql: \password imipd) and put it in a
-- password file the imipd hosts name in their DSN (passfile=, mode 0600).
--
-- The role can log in to the imipd database only, owns the one schema imipd
-- creates its tables in (on the first start; later versions migrate them
-- there), and nothing else: no superuser, no new databases or roles, no
-- replication, no objects in the public schema. Other databases grant
-- CONNECT to everyone by default: let pg_hba.conf admit the role to its own
-- database only, from the imipd hosts, e.g.
--
--   hostssl  imipd  imipd  192.0.2.10/32  scram-sha-256
--   hostssl  imipd  imipd  192.0.2.11/32  scram-sha-256

CREATE ROLE imipd LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT NOREPLICATION NOBYPASSRLS
	CONNECTION LIMIT 100;

CREATE DATABASE imipd ENCODING 'UTF8' LC_COLLATE 'C.UTF-8' LC_CTYPE 'C.UTF-8' TEMPLATE template0;
REVOKE ALL ON DATABASE imipd FROM PUBLIC;
GRANT CONNECT ON DATABASE imipd TO imipd;

\connect imipd
REVOKE ALL ON SCHEMA public FROM PUBLIC;
CREATE SCHEMA imipd AUTHORIZATION imipd;
ALTER ROLE imipd IN DATABASE imipd SET search_path = imipd;
