-- mfa_auth: schema objects. Loaded first by the extension script (bootstrap).
-- The schema `auth` itself is created by CREATE EXTENSION (mfa_auth.control: schema = auth).
--
-- auth.mfa_challenges and auth.mfa_amr_claims follow shared/seeds exactly (columns, types,
-- nullability, primary keys, index names). auth.mfa_factors is the table factor_id refers to,
-- compatible with Supabase Auth.

-- Ordinary roles may resolve names in the schema (the stateless OTP helpers are meant for
-- everyone); every table below is closed to them.
GRANT USAGE ON SCHEMA auth TO PUBLIC;

CREATE TYPE auth.factor_type AS ENUM ('totp', 'webauthn', 'phone');
CREATE TYPE auth.factor_status AS ENUM ('unverified', 'verified');
CREATE TYPE auth.aal_level AS ENUM ('aal1', 'aal2', 'aal3');

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
    CONSTRAINT mfa_factors_pkey PRIMARY KEY (id)
);
CREATE INDEX mfa_factors_user_id_idx ON auth.mfa_factors USING btree (user_id);
-- Supabase Auth: a friendly name is unique per user when it is not blank.
CREATE UNIQUE INDEX mfa_factors_user_friendly_name_unique
    ON auth.mfa_factors USING btree (friendly_name, user_id)
    WHERE btrim(friendly_name) <> '';
COMMENT ON TABLE auth.mfa_factors IS 'mfa_auth: enrolled MFA factors (TOTP, phone, WebAuthn) of each user';

CREATE TABLE auth.mfa_challenges (
    id                     uuid        NOT NULL DEFAULT gen_random_uuid(),
    factor_id              uuid        NOT NULL,
    created_at             timestamptz NOT NULL DEFAULT now(),
    verified_at            timestamptz,
    ip_address             inet        NOT NULL,
    otp_code               text,
    web_authn_session_data jsonb,
    CONSTRAINT mfa_challenges_pkey PRIMARY KEY (id),
    -- A challenge belongs to a factor; unenrolling the factor removes its challenges.
    CONSTRAINT mfa_challenges_auth_factor_id_fkey FOREIGN KEY (factor_id)
        REFERENCES auth.mfa_factors (id) ON DELETE CASCADE
);
CREATE INDEX mfa_challenge_created_at_idx ON auth.mfa_challenges USING btree (created_at DESC);
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

-- Secrets, code hashes and claims are for the extension's own functions only: PUBLIC gets
-- nothing on any table (privileges are granted per role by the DBA, or used through
-- SECURITY DEFINER functions).
REVOKE ALL ON TABLE auth.mfa_factors FROM PUBLIC;
REVOKE ALL ON TABLE auth.mfa_challenges FROM PUBLIC;
REVOKE ALL ON TABLE auth.mfa_amr_claims FROM PUBLIC;

-- Users' MFA data is not re-creatable by the extension script: pg_dump must keep it.
SELECT pg_catalog.pg_extension_config_dump('auth.mfa_factors', '');
SELECT pg_catalog.pg_extension_config_dump('auth.mfa_challenges', '');
SELECT pg_catalog.pg_extension_config_dump('auth.mfa_amr_claims', '');
