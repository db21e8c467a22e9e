-- PostgreSQL 13 only (it has no SQL-standard function bodies): sql/recovery.sql with the bodies of
-- 0.2.0, as strings, which resolve names when called. See docs/security.md, "Schema auth".
-- Recovery codes: how many the user has, how many are left, and when they were made (no
-- row when the user has none). Generating, verifying and deleting are C functions
-- (src/recovery_codes.rs).
CREATE FUNCTION auth.recovery_codes_status(user_id uuid)
RETURNS TABLE (total integer, remaining integer, created_at timestamptz)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT count(c.id)::integer, (count(c.id) FILTER (WHERE c.consumed_at IS NULL))::integer, min(c.created_at)
      FROM auth.mfa_recovery_code_sets s
      LEFT JOIN auth.mfa_recovery_codes c ON c.mfa_recovery_code_set_id = s.id
     WHERE s.user_id = $1
     GROUP BY s.id
$$;

-- The same for the current user (auth.uid()).
CREATE FUNCTION auth.my_recovery_codes_status()
RETURNS TABLE (total integer, remaining integer, created_at timestamptz)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$ SELECT * FROM auth.recovery_codes_status(auth.uid()) $$;
