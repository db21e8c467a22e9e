-- mfa_auth: schema objects. Loaded first by the extension script (bootstrap).
-- The schema `auth` itself is created by CREATE EXTENSION (mfa_auth.control: schema = auth).
--
-- auth.mfa_challenges and auth.mfa_amr_claims follow the seed specifications of the two tables exactly (columns, types,
-- nullability, primary keys, index names). auth.mfa_factors is the table factor_id refers to,
-- compatible with Supabase Auth.

-- The schema must be the extension's own: created by this CREATE EXTENSION, or an empty one
-- that a superuser made (what pg_restore does), and no role but superusers may create objects
-- in it. Every function and the C code find their tables, views and functions by their names in
-- `auth`; whoever owns the schema, or may create in it, could rename it and plant objects of
-- their own under those names, which SECURITY DEFINER functions would then run as the
-- extension's owner. A schema `auth` that someone else made is refused, never used (0.2.0 used
-- it silently). The same check runs in sql/mfa_auth--0.2.0--0.3.0.sql, and the library checks
-- the schema's owner in every backend before its first statement (src/spi_util.rs).
DO $check$
DECLARE
    nsp oid;
    owner_name text;
    owner_super boolean;
    objects bigint;
BEGIN
    SELECT n.oid, r.rolname, r.rolsuper INTO nsp, owner_name, owner_super
      FROM pg_catalog.pg_namespace n JOIN pg_catalog.pg_roles r ON r.oid OPERATOR(pg_catalog.=) n.nspowner
     WHERE n.nspname OPERATOR(pg_catalog.=) 'auth';
    IF NOT owner_super THEN
        RAISE EXCEPTION USING ERRCODE = '42P06',
            MESSAGE = pg_catalog.format('schema "auth" already exists and belongs to role "%s": mfa_auth installs only into a schema of its own', owner_name),
            DETAIL = 'Its owner could rename it and put objects of their own under the names mfa_auth''s SECURITY DEFINER functions use.',
            HINT = 'If nothing in it is needed, DROP SCHEMA auth (as its owner) and run CREATE EXTENSION mfa_auth again. A database managed by Supabase Auth keeps its own auth schema: mfa_auth cannot be installed beside it (see docs/security.md).';
    END IF;
    SELECT (SELECT pg_catalog.count(*) FROM pg_catalog.pg_class WHERE relnamespace OPERATOR(pg_catalog.=) nsp)
         OPERATOR(pg_catalog.+) (SELECT pg_catalog.count(*) FROM pg_catalog.pg_proc WHERE pronamespace OPERATOR(pg_catalog.=) nsp)
         OPERATOR(pg_catalog.+) (SELECT pg_catalog.count(*) FROM pg_catalog.pg_type WHERE typnamespace OPERATOR(pg_catalog.=) nsp)
         OPERATOR(pg_catalog.+) (SELECT pg_catalog.count(*) FROM pg_catalog.pg_operator WHERE oprnamespace OPERATOR(pg_catalog.=) nsp)
         OPERATOR(pg_catalog.+) (SELECT pg_catalog.count(*) FROM pg_catalog.pg_collation WHERE collnamespace OPERATOR(pg_catalog.=) nsp)
         OPERATOR(pg_catalog.+) (SELECT pg_catalog.count(*) FROM pg_catalog.pg_conversion WHERE connamespace OPERATOR(pg_catalog.=) nsp)
         OPERATOR(pg_catalog.+) (SELECT pg_catalog.count(*) FROM pg_catalog.pg_opfamily WHERE opfnamespace OPERATOR(pg_catalog.=) nsp)
         OPERATOR(pg_catalog.+) (SELECT pg_catalog.count(*) FROM pg_catalog.pg_ts_config WHERE cfgnamespace OPERATOR(pg_catalog.=) nsp)
         OPERATOR(pg_catalog.+) (SELECT pg_catalog.count(*) FROM pg_catalog.pg_extension WHERE extnamespace OPERATOR(pg_catalog.=) nsp
                                   AND extname OPERATOR(pg_catalog.<>) 'mfa_auth')
      INTO objects;
    IF objects OPERATOR(pg_catalog.>) 0 THEN
        RAISE EXCEPTION USING ERRCODE = '42P06',
            MESSAGE = pg_catalog.format('schema "auth" already exists and holds %s objects: mfa_auth installs only into a schema of its own', objects),
            HINT = 'Move those objects elsewhere, or install into a database without a schema auth.';
    END IF;
    IF EXISTS (SELECT 1 FROM pg_catalog.pg_namespace n, pg_catalog.aclexplode(n.nspacl) a
                WHERE n.oid OPERATOR(pg_catalog.=) nsp AND a.privilege_type OPERATOR(pg_catalog.=) 'CREATE'
                  AND NOT COALESCE((SELECT r.rolsuper FROM pg_catalog.pg_roles r WHERE r.oid OPERATOR(pg_catalog.=) a.grantee), false)) THEN
        RAISE EXCEPTION USING ERRCODE = '42501',
            MESSAGE = 'schema "auth" already exists and grants CREATE to a role that is not a superuser',
            HINT = 'REVOKE CREATE ON SCHEMA auth FROM those roles (and PUBLIC), then run CREATE EXTENSION mfa_auth again.';
    END IF;
END
$check$;

-- Ordinary roles may resolve names in the schema (the stateless OTP helpers are meant for
-- everyone); every table below is closed to them.
GRANT USAGE ON SCHEMA auth TO PUBLIC;

CREATE TYPE auth.factor_type AS ENUM ('totp', 'webauthn', 'phone', 'recovery_code');
CREATE TYPE auth.factor_status AS ENUM ('unverified', 'verified');
CREATE TYPE auth.aal_level AS ENUM ('aal1', 'aal2', 'aal3');

-- mfa_auth's single-column rules on auth.mfa_factors are domains, not table CHECK constraints:
-- Postgres reads back (stringToNode) and re-plans every CHECK constraint of a table on each
-- INSERT or UPDATE statement, whichever columns it sets, while a domain's rule is kept planned
-- per backend and runs only when its column is assigned. Every challenge and every verification
-- updates the factor's row; with these four rules as CHECKs the flow spent about a tenth of its
-- server time on them (bench/RESULTS.md, the profile in section 2). The rules that tie columns
-- together stay CHECK constraints on the table, below.
CREATE DOMAIN auth.mfa_totp_algorithm AS text
    CONSTRAINT mfa_factors_totp_algorithm_check CHECK (VALUE IN ('SHA1', 'SHA256', 'SHA512'));
CREATE DOMAIN auth.mfa_totp_digits AS integer
    CONSTRAINT mfa_factors_totp_digits_check CHECK (VALUE BETWEEN 6 AND 10);
CREATE DOMAIN auth.mfa_totp_period AS integer
    CONSTRAINT mfa_factors_totp_period_check CHECK (VALUE >= 1);
CREATE DOMAIN auth.mfa_attempt_count AS integer
    CONSTRAINT mfa_factors_failed_attempts_check CHECK (VALUE >= 0);

CREATE TABLE auth.mfa_factors (
    id                 uuid               NOT NULL DEFAULT gen_random_uuid(),
    user_id            uuid               NOT NULL,
    friendly_name      text,
    factor_type        auth.factor_type   NOT NULL,
    status             auth.factor_status NOT NULL DEFAULT 'unverified',
    created_at         timestamptz        NOT NULL DEFAULT now(),
    updated_at         timestamptz        NOT NULL DEFAULT now(),
    secret             text,
    phone              text,
    last_challenged_at timestamptz,
    -- mfa_auth's own columns: per-factor TOTP parameters (RFC 6238 defaults) ...
    totp_algorithm     auth.mfa_totp_algorithm NOT NULL DEFAULT 'SHA1',
    totp_digits        auth.mfa_totp_digits    NOT NULL DEFAULT 6,
    totp_period        auth.mfa_totp_period    NOT NULL DEFAULT 30,
    -- ... the last accepted TOTP time step (RFC 6238 §5.2: a step is never accepted twice) ...
    last_totp_step     bigint,
    -- ... and the failed-attempt counter behind the lockout.
    failed_attempts    auth.mfa_attempt_count  NOT NULL DEFAULT 0,
    locked_until       timestamptz,
    -- WebAuthn (Supabase Auth's names): the registered credential (id, COSE public key, sign
    -- count, backup flags, ...; see docs/webauthn.md) and its authenticator's AAGUID.
    web_authn_credential jsonb,
    web_authn_aaguid   uuid,
    CONSTRAINT mfa_factors_pkey PRIMARY KEY (id),
    CONSTRAINT mfa_factors_secret_check CHECK (factor_type <> 'totp' OR secret IS NOT NULL),
    CONSTRAINT mfa_factors_phone_check CHECK (factor_type <> 'phone' OR phone IS NOT NULL),
    -- A verified WebAuthn factor has its credential.
    CONSTRAINT mfa_factors_web_authn_credential_check
        CHECK (factor_type <> 'webauthn' OR status = 'unverified' OR web_authn_credential IS NOT NULL)
)
-- Room on each page for the new versions of its rows: a challenge and a verification each
-- update the row, and an update that fits on the row's page is a HOT update (no new index
-- entries, no extra WAL for them).
WITH (fillfactor = 80);
CREATE INDEX mfa_factors_user_id_idx ON auth.mfa_factors USING btree (user_id);
-- Supabase Auth: a friendly name is unique per user when it is not blank.
CREATE UNIQUE INDEX mfa_factors_user_friendly_name_unique
    ON auth.mfa_factors USING btree (friendly_name, user_id)
    WHERE btrim(friendly_name) <> '';
-- Supabase Auth: one phone factor per number and user.
CREATE UNIQUE INDEX unique_phone_factor_per_user ON auth.mfa_factors USING btree (user_id, phone);
COMMENT ON TABLE auth.mfa_factors IS 'mfa_auth: enrolled MFA factors (TOTP, phone, WebAuthn) of each user';

CREATE TABLE auth.mfa_challenges (
    id                     uuid        NOT NULL DEFAULT gen_random_uuid(),
    factor_id              uuid        NOT NULL,
    created_at             timestamptz NOT NULL DEFAULT now(),
    verified_at            timestamptz,
    ip_address             inet        NOT NULL,
    otp_code               text,
    web_authn_session_data jsonb,
    CONSTRAINT mfa_challenges_pkey PRIMARY KEY (id)
);
-- No foreign key to mfa_factors, as in the seed: a foreign-key check on every challenge insert
-- was measurable in the verification flow (bench/run), and integrity does not depend on it.
-- auth.unenroll_factor deletes a factor's challenges itself; verification joins the factor, so
-- a challenge whose factor was deleted by hand is simply not found; cleanup_challenges removes it.
CREATE INDEX mfa_challenge_created_at_idx ON auth.mfa_challenges USING btree (created_at DESC);
-- Beside the seed index, not instead of it: verify_factor finds a factor's newest open challenge
-- newest-first, and unenrolling a factor deletes its challenges (auth.unenroll_factor). With only
-- (created_at DESC) the first scans every challenge of every factor created within the expiry
-- window and the second scans the whole table; with this index both touch only the factor's rows.
CREATE INDEX mfa_challenges_factor_id_created_at_idx
    ON auth.mfa_challenges USING btree (factor_id, created_at DESC);
COMMENT ON TABLE auth.mfa_challenges IS 'mfa_auth: MFA challenges issued for a factor; otp_code holds only a hash';

CREATE TABLE auth.mfa_amr_claims (
    session_id            uuid        NOT NULL,
    created_at            timestamptz NOT NULL DEFAULT now(),
    updated_at            timestamptz NOT NULL DEFAULT now(),
    authentication_method text        NOT NULL,
    id                    uuid        NOT NULL DEFAULT gen_random_uuid(),
    CONSTRAINT amr_id_pk PRIMARY KEY (id),
    -- Named as in Supabase Auth, whose code upserts with ON CONFLICT ON CONSTRAINT by this name.
    CONSTRAINT mfa_amr_claims_session_id_authentication_method_pkey
        UNIQUE (session_id, authentication_method)
);
COMMENT ON TABLE auth.mfa_amr_claims IS 'mfa_auth: authentication methods (AMR) each session has completed';

-- Which factor each MFA claim was earned with, so that unenrolling a factor removes the
-- claims it granted (sessions that were aal2 through it drop to aal1). mfa_amr_claims itself
-- stays exactly as the seed.
CREATE TABLE auth.mfa_amr_claim_factors (
    session_id            uuid NOT NULL,
    authentication_method text NOT NULL,
    factor_id             uuid NOT NULL,
    CONSTRAINT mfa_amr_claim_factors_pkey PRIMARY KEY (factor_id, session_id, authentication_method)
);
-- Written only together with its claim (verify) and deleted with its factor (unenroll), by this
-- extension's own statements; no foreign keys, for the same reason as mfa_challenges.
CREATE INDEX mfa_amr_claim_factors_claim_idx
    ON auth.mfa_amr_claim_factors USING btree (session_id, authentication_method);
COMMENT ON TABLE auth.mfa_amr_claim_factors IS 'mfa_auth: the factor behind each MFA claim';

-- Recovery codes, in Supabase Auth's shape: one set per user, tied 1:1 to the user's
-- `recovery_code` factor (created verified: the codes are handed to an aal2 session), with the
-- per-user failure count and lock; one row per single-use code, holding only its hash
-- (src/otp/recovery.rs). A code is found by (set, hash): one index look-up.
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

-- Secrets, code hashes and claims are for the extension's own functions only: PUBLIC gets
-- nothing on any table (privileges are granted per role by the DBA, or used through
-- SECURITY DEFINER functions).
REVOKE ALL ON TABLE auth.mfa_factors FROM PUBLIC;
REVOKE ALL ON TABLE auth.mfa_challenges FROM PUBLIC;
REVOKE ALL ON TABLE auth.mfa_amr_claims FROM PUBLIC;
REVOKE ALL ON TABLE auth.mfa_amr_claim_factors FROM PUBLIC;
REVOKE ALL ON TABLE auth.mfa_recovery_code_sets FROM PUBLIC;
REVOKE ALL ON TABLE auth.mfa_recovery_codes FROM PUBLIC;

-- Users' MFA data is not re-creatable by the extension script: pg_dump must keep it.
SELECT pg_catalog.pg_extension_config_dump('auth.mfa_factors', '');
SELECT pg_catalog.pg_extension_config_dump('auth.mfa_challenges', '');
SELECT pg_catalog.pg_extension_config_dump('auth.mfa_amr_claims', '');
SELECT pg_catalog.pg_extension_config_dump('auth.mfa_amr_claim_factors', '');
SELECT pg_catalog.pg_extension_config_dump('auth.mfa_recovery_code_sets', '');
SELECT pg_catalog.pg_extension_config_dump('auth.mfa_recovery_codes', '');
