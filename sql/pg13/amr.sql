-- PostgreSQL 13 only (it has no SQL-standard function bodies): sql/amr.sql with the bodies of
-- 0.2.0, as strings, which resolve names when called. See docs/security.md, "Schema auth".
-- Reading a session's claims. Plain SQL: one indexed look-up each, on
-- mfa_amr_claims_session_id_authentication_method_pkey (session_id, ...).

-- The MFA claims that count: each claim with the factor that earned it and that factor's
-- user (through auth.mfa_amr_claim_factors, written by verification in the same statement
-- as the claim). An MFA claim counts for a user only through this binding: a session id
-- alone is never enough (a claim recorded without a factor, or earned by another user's
-- factor in the same session id, is not the user's). Closed to PUBLIC like the tables.
CREATE VIEW auth.mfa_verified_claims AS
SELECT a.session_id, a.authentication_method, a.created_at, a.updated_at, l.factor_id, f.user_id
  FROM auth.mfa_amr_claims a
  JOIN auth.mfa_amr_claim_factors l
    ON l.session_id = a.session_id AND l.authentication_method = a.authentication_method
  JOIN auth.mfa_factors f ON f.id = l.factor_id
 WHERE f.status = 'verified';
REVOKE ALL ON TABLE auth.mfa_verified_claims FROM PUBLIC;
COMMENT ON VIEW auth.mfa_verified_claims IS 'mfa_auth: MFA claims with the factor and user that earned them';

-- The session's AMR claim in the shape of Supabase Auth's JWT `amr` claim, most recent first:
-- [{"method": "totp", "timestamp": 1666086056}, ...] (timestamp = updated_at, Unix seconds).
-- Non-MFA methods (password, ...) as the trusted service recorded them for the session; MFA
-- methods only when earned by a verified factor of `user_id` (of any user when it is NULL).
CREATE FUNCTION auth.session_amr(session_id uuid, user_id uuid) RETURNS jsonb
LANGUAGE sql STABLE PARALLEL SAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT COALESCE(
        jsonb_agg(jsonb_build_object('method', a.authentication_method,
                                     'timestamp', floor(extract(epoch FROM a.updated_at))::bigint)
                  ORDER BY a.updated_at DESC, a.authentication_method),
        '[]'::jsonb)
      FROM auth.mfa_amr_claims a
     WHERE a.session_id = $1
       AND (a.authentication_method <> ALL ('{totp,mfa/phone,mfa/webauthn,mfa/recovery_code}'::text[])
            OR EXISTS (SELECT 1 FROM auth.mfa_verified_claims v
                        WHERE v.session_id = a.session_id
                          AND v.authentication_method = a.authentication_method
                          AND ($2 IS NULL OR v.user_id = $2)))
$$;

CREATE FUNCTION auth.session_amr(session_id uuid) RETURNS jsonb
LANGUAGE sql STABLE PARALLEL SAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$ SELECT auth.session_amr($1, NULL) $$;

-- aal2 when the session has an MFA claim earned by a verified factor of `user_id` (of any
-- user when it is NULL), else aal1. auth.aal() answers this for the current session and user.
CREATE FUNCTION auth.session_aal(session_id uuid, user_id uuid) RETURNS auth.aal_level
LANGUAGE sql STABLE PARALLEL SAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE WHEN EXISTS (SELECT 1 FROM auth.mfa_verified_claims v
                              WHERE v.session_id = $1 AND ($2 IS NULL OR v.user_id = $2))
                THEN 'aal2' ELSE 'aal1' END::auth.aal_level
$$;

CREATE FUNCTION auth.session_aal(session_id uuid) RETURNS auth.aal_level
LANGUAGE sql STABLE PARALLEL SAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$ SELECT auth.session_aal($1, NULL) $$;
