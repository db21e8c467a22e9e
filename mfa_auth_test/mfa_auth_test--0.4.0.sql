-- mfa_auth_test 0.4.0: helpers for testing row-level-security policies that depend on MFA, in
-- pgTAP suites. Every helper goes through mfa_auth's real functions (enroll, challenge, a code
-- computed in the database, verify): none writes an auth table or fakes a claim, so installing
-- this gives no one aal2 without a verification. For test databases: the TOTP secrets it
-- enrolls are kept in mfa_test.totp_secrets (superuser only) so that it can compute codes.
-- docs/testing-your-policies.md has the guide.
\echo Use "CREATE EXTENSION mfa_auth_test" to load this file. \quit

CREATE TABLE mfa_test.totp_secrets (
    factor_id  uuid        NOT NULL PRIMARY KEY,
    user_id    uuid        NOT NULL,
    secret     text        NOT NULL,
    created_at timestamptz NOT NULL DEFAULT pg_catalog.now()
);
REVOKE ALL ON TABLE mfa_test.totp_secrets FROM PUBLIC;
COMMENT ON TABLE mfa_test.totp_secrets IS 'mfa_auth_test: TOTP secrets of the factors mfa_test.enroll_totp made (test data)';

-- Whether the caller is inside BEGIN … COMMIT (a C function of the mfa_auth library).
CREATE FUNCTION mfa_test.in_transaction_block() RETURNS boolean
LANGUAGE c VOLATILE PARALLEL SAFE
AS '$libdir/mfa_auth', 'mfa_test_in_transaction_block_wrapper';

-- Trusts `role`'s request.jwt.claims for the rest of the transaction (mfa_auth.jwt_claims_roles
-- is superuser-only: this runs as the extension's owner). No SET clause on purpose: a function
-- with one would undo the setting when it returns; every name is qualified instead.
CREATE FUNCTION mfa_test._trust_claims_of(role name) RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
AS $$
BEGIN
    PERFORM pg_catalog.set_config('mfa_auth.jwt_claims_roles', role::pg_catalog.text, true);
END
$$;

-- Signs `user_id` in as PostgREST does for a request, for the rest of the transaction: the
-- role, and request.jwt.claims with sub, role and session_id (aal1: nothing verified yet).
-- Returns the session id.
CREATE FUNCTION mfa_test.sign_in(user_id uuid, role name DEFAULT 'authenticated',
                                 session_id uuid DEFAULT pg_catalog.gen_random_uuid())
RETURNS uuid
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF NOT mfa_test.in_transaction_block() THEN
        RAISE EXCEPTION 'mfa_test.sign_in must run inside a transaction block'
            USING ERRCODE = '25P01',
                  HINT = 'The role and claims it sets last until the transaction ends: call it after BEGIN, as a pgTAP test file does (BEGIN; SELECT plan(n); ... ROLLBACK;).';
    END IF;
    IF user_id IS NULL OR role IS NULL OR session_id IS NULL THEN
        RAISE EXCEPTION 'mfa_test.sign_in: user_id, role and session_id must not be NULL' USING ERRCODE = '22004';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles r WHERE r.rolname = role) THEN
        RAISE EXCEPTION 'mfa_test.sign_in: role "%" does not exist', role USING ERRCODE = '42704';
    END IF;
    PERFORM mfa_test._trust_claims_of(role);
    PERFORM pg_catalog.set_config('request.jwt.claims',
        pg_catalog.json_build_object('sub', user_id, 'role', role, 'session_id', session_id,
                                     'aud', 'authenticated')::text, true);
    EXECUTE pg_catalog.format('SET LOCAL ROLE %I', role);
    RETURN session_id;
END
$$;

-- Back to the transaction's own role, with no claims.
CREATE FUNCTION mfa_test.sign_out() RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM pg_catalog.set_config('request.jwt.claims', '', true);
    RESET ROLE;
END
$$;

-- Enrolls a TOTP factor for `user_id` through auth.enroll_totp (unverified, as a real
-- enrollment is) and keeps its secret for mfa_test.verify.
CREATE FUNCTION mfa_test.enroll_totp(user_id uuid) RETURNS TABLE (factor_id uuid, secret text)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    f uuid;
    s text;
BEGIN
    IF user_id IS NULL THEN
        RAISE EXCEPTION 'mfa_test.enroll_totp: user_id must not be NULL' USING ERRCODE = '22004';
    END IF;
    SELECT e.factor_id, e.secret INTO f, s FROM auth.enroll_totp(user_id) e;
    INSERT INTO mfa_test.totp_secrets (factor_id, user_id, secret) VALUES (f, user_id, s);
    factor_id := f;
    secret := s;
    RETURN NEXT;
END
$$;

-- Verifies a factor of `user_id` through the real verification: a challenge, the code of a
-- TOTP step the factor has not used yet (computed with auth.totp_generate), auth.verify_challenge
-- with the session `session_id`, or none. The factor is `factor_id`, or the user's newest factor
-- mfa_test.enroll_totp made. Returns what auth.verify_challenge returned.
CREATE FUNCTION mfa_test._verify(user_id uuid, factor_id uuid, session_id uuid) RETURNS boolean
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    f uuid;
    s text;
    last_step bigint;
    period integer;
    now_step bigint;
    window_steps integer := pg_catalog.current_setting('mfa_auth.totp_window')::integer;
    step bigint;
    c uuid;
BEGIN
    SELECT t.factor_id, t.secret INTO f, s FROM mfa_test.totp_secrets t
     WHERE t.user_id = _verify.user_id AND (_verify.factor_id IS NULL OR t.factor_id = _verify.factor_id)
     ORDER BY t.created_at DESC LIMIT 1;
    IF f IS NULL THEN
        RAISE EXCEPTION 'mfa_test.verify: user % has no TOTP factor enrolled by mfa_test.enroll_totp%', user_id,
            CASE WHEN factor_id IS NULL THEN '' ELSE ' with id ' || factor_id END
            USING ERRCODE = 'P0002', HINT = 'Enroll one first: SELECT * FROM mfa_test.enroll_totp(user_id).';
    END IF;
    SELECT m.last_totp_step, m.totp_period INTO last_step, period FROM auth.mfa_factors m WHERE m.id = f;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'mfa_test.verify: factor % was unenrolled', f USING ERRCODE = 'P0002';
    END IF;
    now_step := pg_catalog.floor(pg_catalog.date_part('epoch', pg_catalog.clock_timestamp()) / period)::bigint;
    -- A step is accepted once: the current one, or the next ones within the window when it is
    -- used (never a past one, which the clock could leave behind before the verification).
    step := GREATEST(now_step, COALESCE(last_step + 1, now_step));
    IF step > now_step + window_steps THEN
        RAISE EXCEPTION 'mfa_test.verify: the factor has used every TOTP step of the window (%)', window_steps + 1
            USING ERRCODE = '55006',
                  HINT = 'A factor verifies at most once per step (RFC 6238): wait for the next step, or enroll another factor for the test.';
    END IF;
    SELECT ch.challenge_id INTO c FROM auth.create_challenge(f, '127.0.0.1') ch;
    RETURN auth.verify_challenge(c, auth.totp_generate(s, pg_catalog.to_timestamp((step * period)::double precision)),
                                 '127.0.0.1', session_id);
END
$$;

-- Raises the current test session (mfa_test.sign_in's) to aal2 for `user_id` through the real
-- verification. Raises when there is no test session, or it is another user's.
CREATE FUNCTION mfa_test.verify(user_id uuid, factor_id uuid DEFAULT NULL) RETURNS boolean
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    claims jsonb := NULLIF(pg_catalog.current_setting('request.jwt.claims', true), '')::jsonb;
BEGIN
    IF user_id IS NULL THEN
        RAISE EXCEPTION 'mfa_test.verify: user_id must not be NULL' USING ERRCODE = '22004';
    END IF;
    IF claims IS NULL OR claims->>'session_id' IS NULL THEN
        RAISE EXCEPTION 'mfa_test.verify: no test session'
            USING ERRCODE = '55000', HINT = 'Sign the user in first: SELECT mfa_test.sign_in(user_id).';
    END IF;
    IF claims->>'sub' IS DISTINCT FROM user_id::text THEN
        RAISE EXCEPTION 'mfa_test.verify: the test session is user %''s, not %', claims->>'sub', user_id
            USING ERRCODE = '22023';
    END IF;
    RETURN mfa_test._verify(user_id, factor_id, (claims->>'session_id')::uuid);
END
$$;

-- The schema pgTAP is installed in (raises when it is not).
CREATE FUNCTION mfa_test._pgtap() RETURNS name
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    s name;
BEGIN
    SELECT n.nspname INTO s FROM pg_catalog.pg_extension e JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace
     WHERE e.extname = 'pgtap';
    IF s IS NULL THEN
        RAISE EXCEPTION 'mfa_auth_test''s assertions need pgTAP' USING ERRCODE = '42883',
            HINT = 'CREATE EXTENSION pgtap; (Debian: apt install postgresql-15-pgtap).';
    END IF;
    RETURN s;
END
$$;

-- pgTAP's ok(), and its diag() when `have` is false.
CREATE FUNCTION mfa_test._ok(have boolean, description text, diagnostics text) RETURNS text
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    tap name := mfa_test._pgtap();
    r text;
BEGIN
    -- pgTAP's functions call each other unqualified: its schema on the path for the call (the
    -- SET clause above puts the path back when this returns).
    PERFORM pg_catalog.set_config('search_path', pg_catalog.format('%I, pg_catalog, pg_temp', tap), true);
    EXECUTE pg_catalog.format('SELECT %I.ok($1, $2)', tap) INTO r USING have, description;
    IF NOT have AND diagnostics IS NOT NULL THEN
        EXECUTE pg_catalog.format('SELECT %I.diag($1)', tap) INTO diagnostics USING diagnostics;
        r := r || E'\n' || diagnostics;
    END IF;
    RETURN r;
END
$$;

-- pgTAP assertion: the rows of `tbl` that `user_id` can read need aal2. A session of the user
-- that is aal1 (the user has a verified factor) sees none of them, and an aal2 session sees
-- some. Without `user_id` a new user is made (then the policy must show them rows at aal2).
-- The user gets a verified TOTP factor through the real functions if it has none from
-- mfa_test.enroll_totp. Runs as `role`; the transaction's role and claims are put back.
CREATE FUNCTION mfa_test.policies_require_aal2(tbl regclass, user_id uuid DEFAULT NULL,
                                               role name DEFAULT 'authenticated', description text DEFAULT NULL)
RETURNS text
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    u uuid := COALESCE(user_id, pg_catalog.gen_random_uuid());
    claims text := pg_catalog.current_setting('request.jwt.claims', true);
    at_aal1 bigint;
    at_aal2 bigint;
    aal_seen text;
    s uuid;
BEGIN
    PERFORM mfa_test._pgtap();
    IF tbl IS NULL THEN
        RAISE EXCEPTION 'mfa_test.policies_require_aal2: tbl must not be NULL' USING ERRCODE = '22004';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM mfa_test.totp_secrets t WHERE t.user_id = u) THEN
        PERFORM mfa_test.enroll_totp(u);
    END IF;
    -- A verified factor, verified in no session: the user is enrolled, no session is aal2.
    IF NOT EXISTS (SELECT 1 FROM auth.mfa_factors f WHERE f.user_id = u AND f.status = 'verified') THEN
        PERFORM mfa_test._verify(u, NULL, NULL);
    END IF;
    s := mfa_test.sign_in(u, role);
    EXECUTE pg_catalog.format('SELECT pg_catalog.count(*) FROM %s', tbl) INTO at_aal1;
    -- (Verified as the caller, who may run the helpers, then signed in again to that session;
    -- back to the caller's role with RESET ROLE here: the app's role may not use the helpers.)
    RESET ROLE;
    PERFORM mfa_test._verify(u, NULL, s);
    PERFORM mfa_test.sign_in(u, role, s);
    aal_seen := auth.aal()::text;
    EXECUTE pg_catalog.format('SELECT pg_catalog.count(*) FROM %s', tbl) INTO at_aal2;
    RESET ROLE;
    PERFORM pg_catalog.set_config('request.jwt.claims', COALESCE(claims, ''), true);
    RETURN mfa_test._ok(at_aal1 = 0 AND at_aal2 > 0 AND aal_seen = 'aal2',
        COALESCE(description, pg_catalog.format('%s: rows need aal2 (%s)', tbl, role)),
        pg_catalog.format('as %s, user %s: %s rows at aal1, %s rows at %s (want 0, then more than 0 at aal2)',
                          role, u, at_aal1, at_aal2, aal_seen));
END
$$;

-- pgTAP assertion: every table of `schema_name` has row-level security enabled.
CREATE FUNCTION mfa_test.rls_enabled(schema_name name, description text DEFAULT NULL) RETURNS text
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    missing text[];
BEGIN
    PERFORM mfa_test._pgtap();
    SELECT pg_catalog.array_agg(c.relname::text ORDER BY c.relname) INTO missing
      FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
     WHERE n.nspname = schema_name AND c.relkind IN ('r', 'p') AND NOT c.relrowsecurity;
    RETURN mfa_test._ok(missing IS NULL,
        COALESCE(description, pg_catalog.format('every table of schema %I has row-level security enabled', schema_name)),
        'without row-level security: ' || pg_catalog.array_to_string(missing, ', '));
END
$$;

-- Only a superuser, or a role it grants them to, calls the helpers.
REVOKE ALL ON SCHEMA mfa_test FROM PUBLIC;
REVOKE EXECUTE ON ALL FUNCTIONS IN SCHEMA mfa_test FROM PUBLIC;
