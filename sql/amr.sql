-- Reading a session's claims. Plain SQL: one indexed look-up each, on
-- mfa_amr_claims_session_id_authentication_method_pkey (session_id, ...).

-- The session's AMR claim in the shape of Supabase Auth's JWT `amr` claim, most recent first:
-- [{"method": "totp", "timestamp": 1666086056}, ...] (timestamp = updated_at, Unix seconds).
CREATE FUNCTION auth.session_amr(session_id uuid) RETURNS jsonb
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
$$;

-- aal2 when the session has completed any MFA method, else aal1.
CREATE FUNCTION auth.session_aal(session_id uuid) RETURNS auth.aal_level
LANGUAGE sql STABLE PARALLEL SAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE WHEN EXISTS (
                    SELECT 1 FROM auth.mfa_amr_claims a
                     WHERE a.session_id = $1
                       AND a.authentication_method IN ('totp', 'mfa/phone', 'mfa/webauthn'))
                THEN 'aal2' ELSE 'aal1' END::auth.aal_level
$$;
