-- mfa_auth 0.1.0 -> 0.2.0. Run by ALTER EXTENSION mfa_auth UPDATE (never by hand).
\echo Use "ALTER EXTENSION mfa_auth UPDATE TO '0.2.0'" to load this file. \quit
--
-- What changed, and why (each later change of 0.2.0 adds its part here, in the same commit):
--
-- 1. Trust model (aal2 only from a factor the user is entitled to, in the session that
--    verified it):
--    - view auth.mfa_verified_claims: MFA claims with the factor and user that earned them,
--      the only source of aal2 from now on (a session id alone is never enough);
--    - auth.session_amr(uuid, uuid) and auth.session_aal(uuid, uuid) (per user), and the
--      one-argument forms redefined on top of them (MFA claims count only through a
--      verified factor);
--    - auth.attempt_tracking() gains the `refusals` column (the attempt table refuses a
--      newcomer rather than forget someone else's count).
--    Behaviour of existing C functions (entitlement checks, mfa_auth.database_sessions,
--    record_amr refusing MFA methods, unenroll waiting for verifications) needs no SQL here:
--    their definitions are unchanged.
-- 2. Resources: auth.cleanup_challenges_batch() and the procedures
--    auth.cleanup_challenges_batched() / auth.rotate_secrets_batched() that commit per batch.
-- 3. WebAuthn factors: auth.mfa_factors gains web_authn_credential and web_authn_aaguid (and
--    a check that a verified WebAuthn factor has its credential); auth.create_challenge gains
--    the `webauthn` column (options for the browser); new auth.enroll_webauthn,
--    auth.verify_webauthn and the self-service auth.enroll_my_webauthn,
--    auth.webauthn_options, auth.mfa_verify_webauthn.
-- 4. Recovery codes: the `recovery_code` factor type (its AMR method `mfa/recovery_code` joins
--    the MFA methods of auth.session_amr above), tables auth.mfa_recovery_code_sets and
--    auth.mfa_recovery_codes (Supabase Auth's shape), auth.generate_recovery_codes,
--    auth.verify_recovery_code, auth.recovery_codes_status, auth.delete_recovery_codes and the
--    self-service auth.generate_my_recovery_codes, auth.mfa_verify_recovery_code,
--    auth.my_recovery_codes_status.
-- 5. Verification cost: auth.mfa_factors' four single-column CHECK constraints (algorithm,
--    digits, period, failed_attempts) become domains of the same names (a domain's rule is
--    planned once per backend and checked only when its column is assigned; a table CHECK is
--    re-read and re-planned by every INSERT or UPDATE), and the table gets fillfactor 80 (room
--    for HOT updates: challenges and verifications update the factor's row). The column type
--    change rewrites auth.mfa_factors and its indexes once, under an ACCESS EXCLUSIVE lock
--    (one row per factor: seconds for a million factors).
-- 6. Closed by default: EXECUTE on every routine of auth revoked from PUBLIC and granted back
--    by name to the stateless, session and self-service functions only (as sql/grants.sql).
--    Always the last part: it covers every function the parts before it create.
--
-- C symbols: the new library keeps every symbol 0.1.0's SQL points at, with 0.1.0's
-- behaviour where the SQL-visible shape changed, so a database still on 0.1.0's SQL works
-- between installing the new library and running this script. Two such cases:
-- auth.attempt_tracking() returned four columns; 0.1.0's definition keeps calling
-- `attempt_tracking_wrapper` (four columns, still exported), 0.2.0's calls
-- `attempt_tracking_v2_wrapper` (five). auth.create_challenge() returned three columns:
-- `create_challenge_wrapper` (three) and `create_challenge_v2_wrapper` (four, with webauthn).
--
-- Data: nothing to migrate. 0.1.0's claims earned by verification have their factor link
-- and stay valid; a `totp` claim written by 0.1.0's record_amr has none and no longer makes
-- its session aal2 (it never proved a factor). Secrets sealed under the keys of
-- mfa_auth.encryption_keys keep opening; phone-code hashes of open challenges (v1) still verify.

-- 1. Trust model ------------------------------------------------------------------------------

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

CREATE OR REPLACE FUNCTION auth.session_amr(session_id uuid) RETURNS jsonb
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

CREATE OR REPLACE FUNCTION auth.session_aal(session_id uuid) RETURNS auth.aal_level
LANGUAGE sql STABLE PARALLEL SAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$ SELECT auth.session_aal($1, NULL) $$;

DROP FUNCTION auth.attempt_tracking();
CREATE FUNCTION auth."attempt_tracking"() RETURNS TABLE (
	"survives_rollback" bool,  /* bool */
	"capacity" INT,  /* i32 */
	"tracked_factors" INT,  /* i32 */
	"evictions" bigint,  /* i64 */
	"refusals" bigint  /* i64 */
)
STRICT VOLATILE SECURITY DEFINER
SET search_path TO pg_catalog, pg_temp
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'attempt_tracking_v2_wrapper';

-- 2. Resources --------------------------------------------------------------------------------

CREATE FUNCTION auth."cleanup_challenges_batch"(
	"cutoff" timestamp with time zone, /* Option < TimestampWithTimeZone > */
	"batch_size" INT DEFAULT 1000 /* Option < i32 > */
) RETURNS bigint /* i64 */
VOLATILE SECURITY DEFINER
SET search_path TO pg_catalog, pg_temp
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'cleanup_challenges_batch_wrapper';

-- Deletes challenges created more than `older_than` ago, `batch_size` per transaction, with
-- the cutoff computed once at the start (challenges created meanwhile are left alone).
CREATE PROCEDURE auth.cleanup_challenges_batched(older_than interval DEFAULT '24 hours',
                                                 batch_size integer DEFAULT 1000)
LANGUAGE plpgsql
AS $$
DECLARE
    cutoff timestamptz;
    deleted bigint;
BEGIN
    IF older_than IS NULL THEN
        RAISE EXCEPTION 'older_than must not be NULL' USING ERRCODE = '22004';
    END IF;
    IF older_than OPERATOR(pg_catalog.<) interval '0' THEN
        RAISE EXCEPTION 'invalid older_than: must not be negative' USING ERRCODE = '22023';
    END IF;
    cutoff := pg_catalog.clock_timestamp() OPERATOR(pg_catalog.-) older_than;
    LOOP
        deleted := auth.cleanup_challenges_batch(cutoff, batch_size);
        COMMIT;
        EXIT WHEN deleted OPERATOR(pg_catalog.<) batch_size;
    END LOOP;
END
$$;

-- Re-encrypts every TOTP secret not sealed with the current key, `batch_size` per
-- transaction (auth.rotate_secrets does one batch).
CREATE PROCEDURE auth.rotate_secrets_batched(batch_size integer DEFAULT 1000)
LANGUAGE plpgsql
AS $$
DECLARE
    done bigint;
BEGIN
    LOOP
        done := auth.rotate_secrets(batch_size);
        COMMIT;
        EXIT WHEN done OPERATOR(pg_catalog.<) batch_size;
    END LOOP;
END
$$;

-- 3. WebAuthn ---------------------------------------------------------------------------------

ALTER TABLE auth.mfa_factors
    ADD COLUMN web_authn_credential jsonb,
    ADD COLUMN web_authn_aaguid uuid,
    ADD CONSTRAINT mfa_factors_web_authn_credential_check
        CHECK (factor_type <> 'webauthn' OR status = 'unverified' OR web_authn_credential IS NOT NULL);

DROP FUNCTION auth.create_challenge(uuid, inet);
CREATE FUNCTION auth."create_challenge"(
	"factor_id" uuid, /* Option < pgrx :: Uuid > */
	"ip_address" inet /* Option < pgrx :: Inet > */
) RETURNS TABLE (
	"challenge_id" uuid,  /* pgrx :: Uuid */
	"expires_at" timestamp with time zone,  /* TimestampWithTimeZone */
	"code" TEXT,  /* Option < String > */
	"webauthn" jsonb  /* Option < pgrx :: JsonB > */
)
VOLATILE SECURITY DEFINER
SET search_path TO pg_catalog, pg_temp
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'create_challenge_v2_wrapper';

CREATE FUNCTION auth."enroll_webauthn"(
	"user_id" uuid, /* Option < pgrx :: Uuid > */
	"friendly_name" TEXT DEFAULT NULL /* Option < & str > */
) RETURNS uuid /* pgrx :: Uuid */
VOLATILE SECURITY DEFINER
SET search_path TO pg_catalog, pg_temp
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'enroll_webauthn_wrapper';

CREATE FUNCTION auth."verify_webauthn"(
	"challenge_id" uuid, /* Option < pgrx :: Uuid > */
	"credential" jsonb, /* Option < CredentialJson > */
	"ip_address" inet DEFAULT NULL, /* Option < pgrx :: Inet > */
	"session_id" uuid DEFAULT NULL /* Option < pgrx :: Uuid > */
) RETURNS bool /* bool */
VOLATILE SECURITY DEFINER
SET search_path TO pg_catalog, pg_temp
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'verify_webauthn_wrapper';

CREATE FUNCTION auth."enroll_my_webauthn"(
	"friendly_name" TEXT DEFAULT NULL /* Option < & str > */
) RETURNS uuid /* pgrx :: Uuid */
VOLATILE SECURITY DEFINER
SET search_path TO pg_catalog, pg_temp
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'enroll_my_webauthn_wrapper';

CREATE FUNCTION auth."webauthn_options"(
	"factor_id" uuid DEFAULT NULL /* Option < pgrx :: Uuid > */
) RETURNS jsonb /* pgrx :: JsonB */
VOLATILE SECURITY DEFINER
SET search_path TO pg_catalog, pg_temp
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'webauthn_options_wrapper';

CREATE FUNCTION auth."mfa_verify_webauthn"(
	"challenge_id" uuid, /* Option < pgrx :: Uuid > */
	"credential" jsonb /* Option < CredentialJson > */
) RETURNS bool /* bool */
VOLATILE SECURITY DEFINER
SET search_path TO pg_catalog, pg_temp
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'mfa_verify_webauthn_wrapper';

-- 4. Recovery codes ---------------------------------------------------------------------------

-- (Added in the update's transaction, and not used in it: PostgreSQL refuses a new enum value
-- in the transaction that added it.)
ALTER TYPE auth.factor_type ADD VALUE 'recovery_code';

CREATE TABLE auth.mfa_recovery_code_sets (
    id                        uuid        NOT NULL DEFAULT gen_random_uuid(),
    user_id                   uuid        NOT NULL,
    mfa_factor_id             uuid        NOT NULL,
    failed_verification_count integer     NOT NULL DEFAULT 0,
    verification_locked_until timestamptz,
    created_at                timestamptz NOT NULL DEFAULT now(),
    updated_at                timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT mfa_recovery_code_sets_pkey PRIMARY KEY (id),
    CONSTRAINT mfa_recovery_code_sets_user_id_key UNIQUE (user_id),
    CONSTRAINT mfa_recovery_code_sets_mfa_factor_id_key UNIQUE (mfa_factor_id),
    CONSTRAINT mfa_recovery_code_sets_failed_verification_count_check CHECK (failed_verification_count >= 0)
);
COMMENT ON TABLE auth.mfa_recovery_code_sets IS 'mfa_auth: each user''s set of recovery codes, with its failure count and lock';

CREATE TABLE auth.mfa_recovery_codes (
    id                       uuid        NOT NULL DEFAULT gen_random_uuid(),
    mfa_recovery_code_set_id uuid        NOT NULL,
    code_hash                text        NOT NULL,
    consumed_at              timestamptz,
    created_at               timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT mfa_recovery_codes_pkey PRIMARY KEY (id),
    CONSTRAINT mfa_recovery_codes_set_id_code_hash_key UNIQUE (mfa_recovery_code_set_id, code_hash)
);
COMMENT ON TABLE auth.mfa_recovery_codes IS 'mfa_auth: single-use recovery codes; code_hash holds only a (keyed) hash';
REVOKE ALL ON TABLE auth.mfa_recovery_code_sets FROM PUBLIC;
REVOKE ALL ON TABLE auth.mfa_recovery_codes FROM PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('auth.mfa_recovery_code_sets', '');
SELECT pg_catalog.pg_extension_config_dump('auth.mfa_recovery_codes', '');

CREATE FUNCTION auth."generate_recovery_codes"(
	"user_id" uuid, /* Option < pgrx :: Uuid > */
	"session_id" uuid, /* Option < pgrx :: Uuid > */
	"count" INT DEFAULT 10 /* Option < i32 > */
) RETURNS SETOF TEXT /* String */
VOLATILE SECURITY DEFINER
SET search_path TO pg_catalog, pg_temp
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'generate_recovery_codes_wrapper';

CREATE FUNCTION auth."verify_recovery_code"(
	"user_id" uuid, /* Option < pgrx :: Uuid > */
	"code" TEXT, /* Option < & str > */
	"ip_address" inet DEFAULT NULL, /* Option < pgrx :: Inet > */
	"session_id" uuid DEFAULT NULL /* Option < pgrx :: Uuid > */
) RETURNS bool /* bool */
VOLATILE SECURITY DEFINER
SET search_path TO pg_catalog, pg_temp
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'verify_recovery_code_wrapper';

CREATE FUNCTION auth."delete_recovery_codes"(
	"user_id" uuid /* Option < pgrx :: Uuid > */
) RETURNS void
VOLATILE SECURITY DEFINER
SET search_path TO pg_catalog, pg_temp
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'delete_recovery_codes_wrapper';

CREATE FUNCTION auth."generate_my_recovery_codes"(
	"count" INT DEFAULT 10 /* Option < i32 > */
) RETURNS SETOF TEXT /* String */
VOLATILE SECURITY DEFINER
SET search_path TO pg_catalog, pg_temp
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'generate_my_recovery_codes_wrapper';

CREATE FUNCTION auth."mfa_verify_recovery_code"(
	"code" TEXT /* Option < & str > */
) RETURNS bool /* bool */
VOLATILE SECURITY DEFINER
SET search_path TO pg_catalog, pg_temp
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'mfa_verify_recovery_code_wrapper';

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

-- 5. Verification cost -----------------------------------------------------------------------

CREATE DOMAIN auth.mfa_totp_algorithm AS text
    CONSTRAINT mfa_factors_totp_algorithm_check CHECK (VALUE IN ('SHA1', 'SHA256', 'SHA512'));
CREATE DOMAIN auth.mfa_totp_digits AS integer
    CONSTRAINT mfa_factors_totp_digits_check CHECK (VALUE BETWEEN 6 AND 10);
CREATE DOMAIN auth.mfa_totp_period AS integer
    CONSTRAINT mfa_factors_totp_period_check CHECK (VALUE >= 1);
CREATE DOMAIN auth.mfa_attempt_count AS integer
    CONSTRAINT mfa_factors_failed_attempts_check CHECK (VALUE >= 0);

ALTER TABLE auth.mfa_factors
    DROP CONSTRAINT mfa_factors_totp_algorithm_check,
    DROP CONSTRAINT mfa_factors_totp_digits_check,
    DROP CONSTRAINT mfa_factors_totp_period_check,
    DROP CONSTRAINT mfa_factors_failed_attempts_check,
    ALTER COLUMN totp_algorithm TYPE auth.mfa_totp_algorithm,
    ALTER COLUMN totp_algorithm SET DEFAULT 'SHA1',
    ALTER COLUMN totp_digits TYPE auth.mfa_totp_digits,
    ALTER COLUMN totp_digits SET DEFAULT 6,
    ALTER COLUMN totp_period TYPE auth.mfa_totp_period,
    ALTER COLUMN totp_period SET DEFAULT 30,
    ALTER COLUMN failed_attempts TYPE auth.mfa_attempt_count,
    ALTER COLUMN failed_attempts SET DEFAULT 0,
    SET (fillfactor = 80);

-- 6. Closed by default (the same statements as sql/grants.sql) --------------------------------

REVOKE EXECUTE ON ALL ROUTINES IN SCHEMA auth FROM PUBLIC;

-- For everyone:
GRANT EXECUTE ON FUNCTION
    -- the stateless OTP functions: they touch no table;
    auth.totp_generate(text, timestamptz, integer, integer, text),
    auth.totp_verify(text, text, timestamptz, integer, integer, integer, text),
    auth.hotp_generate(text, bigint, integer, text),
    auth.generate_secret(integer),
    auth.otpauth_uri(text, text, text, integer, integer, text),
    auth.otpauth_parse(text),
    auth.qr_text(text, boolean),
    auth.qr_svg(text),
    -- the session functions, for row-level-security policies: they read the caller's own
    -- identity and session (STABLE C functions, not SECURITY DEFINER);
    auth.uid(),
    auth.session_id(),
    auth.aal(),
    auth.amr(),
    auth.mfa_verified_within(interval),
    auth.role_user_id(name),
    -- self-service: SECURITY DEFINER, acting only on auth.uid()'s own factors and session.
    auth.enroll_my_totp(text, text),
    auth.mfa_verify(text, uuid),
    auth.my_factors(),
    auth.unenroll_my_factor(uuid),
    auth.enroll_my_webauthn(text),
    auth.webauthn_options(uuid),
    auth.mfa_verify_webauthn(uuid, jsonb),
    auth.generate_my_recovery_codes(integer),
    auth.mfa_verify_recovery_code(text),
    auth.my_recovery_codes_status()
TO PUBLIC;

