-- Runs first: the extension under test, in a fresh database made by pg_regress.
CREATE EXTENSION mfa_auth;
-- The psql-style tests use database sessions (off by default; trust_model turns it off again).
SELECT format('ALTER DATABASE %I SET mfa_auth.database_sessions = on', current_database()) \gexec
SELECT extname, extversion, nspname AS schema, extrelocatable
  FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
 WHERE extname = 'mfa_auth';
-- Test helper: runs a statement and shows its SQLSTATE and message instead of failing,
-- so expected output pins the exact error code of every failure path.
CREATE FUNCTION public.sqlstate_of(stmt text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
  EXECUTE stmt;
  RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
  RETURN SQLSTATE || ': ' || SQLERRM;
END $$;
