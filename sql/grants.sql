-- Who may call what. Loaded last, after every function exists.
--
-- Service functions act on any user's factors and sessions: they are for the application's
-- trusted role, which the DBA grants explicitly (see README, "Granting access"). They run as
-- the extension owner (SECURITY DEFINER, search_path pinned to pg_catalog, pg_temp), so the
-- caller needs no privilege on the tables.
REVOKE EXECUTE ON FUNCTION
    auth.enroll_totp(uuid, text, text, text),
    auth.enroll_phone(uuid, text, text),
    auth.unenroll_factor(uuid),
    auth.create_challenge(uuid, inet),
    auth.verify_challenge(uuid, text, inet, uuid),
    auth.verify_factor(uuid, text, inet, uuid),
    auth.cleanup_challenges(interval, integer),
    auth.cleanup_challenges_batch(timestamptz, integer),
    auth.record_amr(uuid, text),
    auth.session_amr(uuid),
    auth.session_amr(uuid, uuid),
    auth.session_aal(uuid),
    auth.session_aal(uuid, uuid),
    auth.unlock_factor(uuid),
    auth.rotate_secrets(integer),
    auth.attempt_tracking()
FROM PUBLIC;
-- The maintenance procedures run as their caller and call the service steps above.
REVOKE EXECUTE ON PROCEDURE
    auth.cleanup_challenges_batched(interval, integer),
    auth.rotate_secrets_batched(integer)
FROM PUBLIC;
-- Self-service functions (enroll_my_totp, mfa_verify, my_factors, unenroll_my_factor) and
-- the session functions (uid, session_id, aal, amr, mfa_verified_within, role_user_id) are
-- for every role: they act only on the caller's own user and session, and keep PUBLIC's
-- default EXECUTE.
-- The stateless OTP functions (totp_generate, totp_verify, hotp_generate, generate_secret,
-- otpauth_uri, otpauth_parse, qr_text, qr_svg) touch no table and keep PUBLIC's default EXECUTE.
