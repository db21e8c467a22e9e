-- mfa_auth 0.3.0 -> 0.4.0 (ALTER EXTENSION mfa_auth UPDATE). In progress: every SQL-visible
-- change of 0.4.0 is made here, in the same commit as the change, so an updated database equals
-- a fresh 0.4.0 install (tests/upgrade/run.sh compares their catalogs and checks the old data
-- on every release path: 0.3.0 -> 0.4.0, 0.2.0 -> 0.3.0 -> 0.4.0, 0.1.0 -> ... -> 0.4.0).
--
-- Changes that need no SQL here (the library does them; a database on 0.3.0's SQL gets them as
-- soon as the 0.4.0 library is installed, before the update):
--   - the policy hooks mfa_auth.verification_hook and mfa_auth.enrollment_hook, and
--     mfa_auth.reverify_window (settings, off by default: an upgraded database behaves as before
--     until a superuser sets one; docs/reference.md, "Policy hooks");
--   - the audit events verification_rejected, enrollment_rejected, hook_failed and
--     user_signed_out, and the outcomes rejected and error (values of text columns).

-- 1. auth.sign_out_user(uuid): every claim of every session of a user removed (a global
--    sign-out, what a rejection of the verification hook does). A service function: no grant.
CREATE FUNCTION auth.sign_out_user(user_id uuid) RETURNS bigint
VOLATILE SECURITY DEFINER
SET search_path TO pg_catalog, pg_temp
LANGUAGE c
AS 'MODULE_PATHNAME', 'sign_out_user_wrapper';
REVOKE EXECUTE ON FUNCTION auth.sign_out_user(uuid) FROM PUBLIC;
