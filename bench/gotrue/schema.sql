-- The tables Supabase Auth (GoTrue) reads and writes while it creates and verifies a TOTP
-- challenge, shaped like its migrations (supabase/auth migrations/*.up.sql, as of 2025):
-- the same columns, types, keys and indexes, so the replayed statements cost what they cost
-- there. Only the statements in bench/gotrue/flow.pgbench touch them. Used only by bench/run.
DROP SCHEMA IF EXISTS gotrue_bench CASCADE;
CREATE SCHEMA gotrue_bench;
SET search_path = gotrue_bench;

CREATE TYPE aal_level AS ENUM ('aal1', 'aal2', 'aal3');
CREATE TYPE factor_type AS ENUM ('totp', 'webauthn', 'phone');
CREATE TYPE factor_status AS ENUM ('unverified', 'verified');

-- 20171026211738_create_users.up.sql and the later migrations that added columns and indexes
CREATE TABLE users (
    instance_id uuid,
    id uuid NOT NULL PRIMARY KEY,
    aud varchar(255),
    role varchar(255),
    email varchar(255),
    encrypted_password varchar(255),
    email_confirmed_at timestamptz,
    invited_at timestamptz,
    confirmation_token varchar(255),
    confirmation_sent_at timestamptz,
    recovery_token varchar(255),
    recovery_sent_at timestamptz,
    email_change_token_new varchar(255),
    email_change varchar(255),
    email_change_sent_at timestamptz,
    last_sign_in_at timestamptz,
    raw_app_meta_data jsonb,
    raw_user_meta_data jsonb,
    is_super_admin boolean,
    created_at timestamptz,
    updated_at timestamptz,
    phone text UNIQUE DEFAULT NULL,
    phone_confirmed_at timestamptz,
    phone_change text DEFAULT '',
    phone_change_token varchar(255) DEFAULT '',
    phone_change_sent_at timestamptz,
    confirmed_at timestamptz GENERATED ALWAYS AS (LEAST(email_confirmed_at, phone_confirmed_at)) STORED,
    email_change_token_current varchar(255) DEFAULT '',
    email_change_confirm_status smallint DEFAULT 0
        CHECK (email_change_confirm_status >= 0 AND email_change_confirm_status <= 2),
    banned_until timestamptz,
    reauthentication_token varchar(255) DEFAULT '',
    reauthentication_sent_at timestamptz,
    is_sso_user boolean NOT NULL DEFAULT false,
    deleted_at timestamptz,
    is_anonymous boolean NOT NULL DEFAULT false
);
CREATE INDEX users_instance_id_idx ON users (instance_id);
CREATE INDEX users_instance_id_email_idx ON users (instance_id, lower(email));
CREATE UNIQUE INDEX confirmation_token_idx ON users (confirmation_token) WHERE confirmation_token !~ '^[0-9 ]*$';
CREATE UNIQUE INDEX recovery_token_idx ON users (recovery_token) WHERE recovery_token !~ '^[0-9 ]*$';
CREATE UNIQUE INDEX email_change_token_current_idx ON users (email_change_token_current) WHERE email_change_token_current !~ '^[0-9 ]*$';
CREATE UNIQUE INDEX email_change_token_new_idx ON users (email_change_token_new) WHERE email_change_token_new !~ '^[0-9 ]*$';
CREATE UNIQUE INDEX reauthentication_token_idx ON users (reauthentication_token) WHERE reauthentication_token !~ '^[0-9 ]*$';
CREATE UNIQUE INDEX users_email_partial_key ON users (email) WHERE is_sso_user = false;
CREATE INDEX users_is_anonymous_idx ON users (is_anonymous);

-- 20210909172000_create_identities_table.up.sql, 20231117164230_add_id_pkey_identities.up.sql
CREATE TABLE identities (
    provider_id text NOT NULL,
    user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    identity_data jsonb NOT NULL,
    provider text NOT NULL,
    last_sign_in_at timestamptz,
    created_at timestamptz,
    updated_at timestamptz,
    email text GENERATED ALWAYS AS (lower(identity_data->>'email')) STORED,
    id uuid NOT NULL DEFAULT gen_random_uuid() PRIMARY KEY,
    CONSTRAINT identities_provider_id_provider_unique UNIQUE (provider_id, provider)
);
CREATE INDEX identities_user_id_idx ON identities (user_id);
CREATE INDEX identities_email_idx ON identities (email text_pattern_ops);

-- 20220811173540_add_sessions_table.up.sql and later (aal, factor_id, not_after, refreshed_at, tag)
CREATE TABLE sessions (
    id uuid NOT NULL PRIMARY KEY,
    user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at timestamptz,
    updated_at timestamptz,
    factor_id uuid,
    aal aal_level,
    not_after timestamptz,
    refreshed_at timestamp,
    user_agent text,
    ip inet,
    tag text
);
CREATE INDEX sessions_user_id_idx ON sessions (user_id);
CREATE INDEX user_id_created_at_idx ON sessions (user_id, created_at);
CREATE INDEX sessions_not_after_idx ON sessions (not_after DESC);

-- 20221003041349_add_mfa_schema.up.sql, 20240729123726_add_mfa_phone_config.up.sql,
-- 20240802193726_add_mfa_factors_column_last_challenged_at.up.sql, webauthn columns
CREATE TABLE mfa_factors (
    id uuid NOT NULL PRIMARY KEY,
    user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    friendly_name text,
    factor_type factor_type NOT NULL,
    status factor_status NOT NULL,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    secret text,
    phone text,
    last_challenged_at timestamptz UNIQUE DEFAULT NULL,
    web_authn_credential jsonb,
    web_authn_aaguid uuid,
    last_webauthn_challenge_data jsonb
);
CREATE INDEX factor_id_created_at_idx ON mfa_factors (user_id, created_at);
CREATE UNIQUE INDEX mfa_factors_user_friendly_name_unique ON mfa_factors (friendly_name, user_id)
    WHERE trim(friendly_name) <> '';
CREATE INDEX mfa_factors_user_id_idx ON mfa_factors (user_id);
CREATE UNIQUE INDEX unique_phone_factor_per_user ON mfa_factors (user_id, phone);

-- The two tables of ../shared/seeds (the same shape as auth.mfa_challenges / auth.mfa_amr_claims)
CREATE TABLE mfa_challenges (
    id uuid NOT NULL PRIMARY KEY,
    factor_id uuid NOT NULL REFERENCES mfa_factors (id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL,
    verified_at timestamptz,
    ip_address inet NOT NULL,
    otp_code text,
    web_authn_session_data jsonb
);
CREATE INDEX mfa_challenge_created_at_idx ON mfa_challenges (created_at DESC);

CREATE TABLE mfa_amr_claims (
    session_id uuid NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    authentication_method text NOT NULL,
    id uuid NOT NULL,
    CONSTRAINT amr_id_pk PRIMARY KEY (id),
    CONSTRAINT mfa_amr_claims_session_id_authentication_method_pkey UNIQUE (session_id, authentication_method)
);

-- 20171026211808_create_refresh_tokens.up.sql, 20220811173540 (session_id), later indexes
CREATE TABLE refresh_tokens (
    instance_id uuid,
    id bigserial PRIMARY KEY,
    token varchar(255) CONSTRAINT refresh_tokens_token_unique UNIQUE,
    user_id varchar(255),
    revoked boolean,
    created_at timestamptz,
    updated_at timestamptz,
    parent varchar(255),
    session_id uuid REFERENCES sessions (id) ON DELETE CASCADE
);
CREATE INDEX refresh_tokens_instance_id_idx ON refresh_tokens (instance_id);
CREATE INDEX refresh_tokens_instance_id_user_id_idx ON refresh_tokens (instance_id, user_id);
CREATE INDEX refresh_tokens_parent_idx ON refresh_tokens (parent);
CREATE INDEX refresh_tokens_session_id_revoked_idx ON refresh_tokens (session_id, revoked);
CREATE INDEX refresh_tokens_updated_at_idx ON refresh_tokens (updated_at DESC);

-- 20171026211834_create_audit_log_entries.up.sql, 20220114185221 (ip_address)
CREATE TABLE audit_log_entries (
    instance_id uuid,
    id uuid NOT NULL PRIMARY KEY,
    payload json,
    created_at timestamptz,
    ip_address varchar(64) NOT NULL DEFAULT ''
);
CREATE INDEX audit_logs_instance_id_idx ON audit_log_entries (instance_id);

-- Which user pgbench's transaction n works on (the replay's counterpart of bench.flow_factors).
CREATE TABLE pick (n int PRIMARY KEY, user_id uuid NOT NULL, session_id uuid NOT NULL, factor_id uuid NOT NULL);
CREATE SEQUENCE pick_seq;

RESET search_path;
