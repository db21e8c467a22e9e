-- PostgreSQL 13 only (it has no SQL-standard function bodies): sql/session.sql with the bodies of
-- 0.2.0, as strings, which resolve names when called. See docs/security.md, "Schema auth".
-- Functions whose SQL declaration pgrx cannot spell: they return or take SQL types of this
-- extension (auth.aal_level) or `name`. The C symbols are the #[pg_extern(sql = false)]
-- wrappers in src/session.rs.

-- The current session's assurance level, aal2 once it has an MFA claim. STABLE, cached per
-- statement: cheap in a row-level-security policy even without a (SELECT ...) wrapper.
-- PARALLEL RESTRICTED: the database-session id lives in the leader backend's memory.
CREATE FUNCTION auth.aal() RETURNS auth.aal_level
LANGUAGE c STABLE PARALLEL RESTRICTED
AS 'MODULE_PATHNAME', 'mfa_auth_aal';

-- The user id of a database role (database-session mode): UUID v5 of the role name.
CREATE FUNCTION auth.role_user_id(role name DEFAULT CURRENT_USER) RETURNS uuid
LANGUAGE c IMMUTABLE PARALLEL SAFE
AS 'MODULE_PATHNAME', 'role_user_id_wrapper';

-- The current user's factors, without secrets.
CREATE FUNCTION auth.my_factors()
RETURNS TABLE (factor_id uuid, friendly_name text, factor_type auth.factor_type,
               status auth.factor_status, created_at timestamptz, updated_at timestamptz,
               last_challenged_at timestamptz)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT f.id, f.friendly_name, f.factor_type, f.status, f.created_at, f.updated_at,
           f.last_challenged_at
      FROM auth.mfa_factors f
     WHERE f.user_id = auth.uid()
     ORDER BY f.created_at
$$;
