-- Who may call what. Loaded last, after every function exists.
--
-- Closed by default: EXECUTE on every routine of schema auth is revoked from PUBLIC, and
-- granted back by name only to what is meant for everyone. A new function, SECURITY DEFINER
-- or not, is therefore callable only by superusers until someone decides otherwise here (and
-- in the upgrade script, and in the privilege-audit expected output).
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
    auth.aal_next(),
    auth.mfa_satisfied(),
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

-- Everything else is a service function (any user's factors and sessions: for the
-- application's trusted role, which the DBA grants explicitly, see README "Granting access";
-- SECURITY DEFINER with search_path pinned to pg_catalog, pg_temp, so the caller needs no
-- privilege on the tables), an operator's function (unlock_factor, rotate_secrets,
-- attempt_tracking), or a maintenance procedure that runs as its caller and calls those
-- (cleanup_challenges_batched, rotate_secrets_batched).

-- The audit trail's readers (sql/audit.sql): how its writer runs.
GRANT EXECUTE ON FUNCTION auth.audit_status() TO mfa_auth_auditor;
