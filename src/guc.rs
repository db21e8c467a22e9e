//! Settings (GUCs). All of mfa_auth's own are superuser-set (PGC_SUSET): an ordinary role
//! can neither loosen the limits nor change them for its own session.
//!
//! The settings that decide *who* the caller is (`mfa_auth.jwt_claims_roles`,
//! `mfa_auth.database_sessions`, and the gateway's `request.jwt.claims`) have an assign
//! hook that drops the per-statement identity cache of src/session.rs: Postgres calls it
//! on every change, including `set_config` inside a DO block and the restore at ROLLBACK,
//! so a cached identity or aal never outlives the setting it came from.

use std::ffi::CString;

use pgrx::guc::{GucContext, GucFlags, GucRegistry, GucSetting};
use pgrx::pg_sys;

pub static CHALLENGE_EXPIRY: GucSetting<i32> = GucSetting::<i32>::new(300);
pub static MAX_FAILED_ATTEMPTS: GucSetting<i32> = GucSetting::<i32>::new(5);
pub static LOCKOUT_DURATION: GucSetting<i32> = GucSetting::<i32>::new(300);
pub static PHONE_RESEND_INTERVAL: GucSetting<i32> = GucSetting::<i32>::new(60);
pub static TOTP_WINDOW: GucSetting<i32> = GucSetting::<i32>::new(1);
pub static JWT_CLAIMS_ROLES: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(None);
pub static DATABASE_SESSIONS: GucSetting<bool> = GucSetting::<bool>::new(false);
/// Master keys: the key file (see src/secrets.rs) and the deprecated in-setting keys.
pub static ENCRYPTION_KEYS_FILE: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(None);
pub static ENCRYPTION_KEYS: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(None);
/// PostgREST's `request.jwt.claims`, defined here (when no one else defines it) only so
/// that its changes reach [`identity_changed`]; it stays settable by everyone, as before.
pub static WEBAUTHN_RP_ID: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(None);
pub static WEBAUTHN_RP_NAME: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(None);
pub static WEBAUTHN_ORIGINS: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(None);
pub static WEBAUTHN_USER_VERIFICATION: GucSetting<Option<CString>> =
    GucSetting::<Option<CString>>::new(Some(c"preferred"));
pub static JWT_CLAIMS: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(None);
/// The audit trail (src/audit.rs).
pub static AUDIT: GucSetting<bool> = GucSetting::<bool>::new(true);
pub static AUDIT_RETENTION: GucSetting<i32> = GucSetting::<i32>::new(90 * 86_400);
pub static AUDIT_LOG_SERVER: GucSetting<bool> = GucSetting::<bool>::new(false);

/// The body of a hook Postgres calls outside the fmgr (GUC check/assign/show hooks, transaction
/// callbacks): a Rust panic there, a bug, must not unwind into Postgres's C frames (undefined
/// behaviour; in practice the backend aborts and the postmaster restarts every connection), so
/// it is caught and the hook answers `fallback`. The panic message still reaches the server log.
/// (These hooks call nothing that raises a Postgres ERROR; docs/testing.md lists each contract.)
pub(crate) fn hook_body<R>(fallback: R, f: impl FnOnce() -> R) -> R {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_or(fallback)
}

/// Assign hooks of the identity settings: cannot fail, allocate or raise.
unsafe extern "C-unwind" fn identity_changed_bool(_new: bool, _extra: *mut core::ffi::c_void) {
    hook_body((), crate::session::claims_changed);
}
unsafe extern "C-unwind" fn identity_changed_string(_new: *const core::ffi::c_char, _extra: *mut core::ffi::c_void) {
    hook_body((), crate::session::claims_changed);
}

/// Whether `name` is free for this library to define: not defined, or only a placeholder
/// (a value set before the library was loaded, which the definition takes over).
fn definable(name: &core::ffi::CStr) -> bool {
    // SAFETY: missing_ok = true: returns 0 for an unknown name instead of raising.
    let flags = unsafe { pg_sys::GetConfigOptionFlags(name.as_ptr(), true) };
    flags == 0 || flags & pg_sys::GUC_CUSTOM_PLACEHOLDER as i32 != 0
}

pub fn init() {
    GucRegistry::define_bool_guc(
        c"mfa_auth.audit",
        c"Whether MFA events are recorded in auth.mfa_audit_log.",
        c"On by default. Failures and refusals are recorded even when the caller rolls back (with the library preloaded).",
        &AUDIT,
        GucContext::Suset,
        GucFlags::default(),
    );
    GucRegistry::define_int_guc(
        c"mfa_auth.audit_retention",
        c"How long rows of auth.mfa_audit_log are kept; 0 keeps them until auth.cleanup_audit_log(older_than) removes them.",
        c"With the library preloaded the audit writer deletes older rows, in batches on the created_at index.",
        &AUDIT_RETENTION,
        0,
        i32::MAX,
        GucContext::Sighup,
        GucFlags::UNIT_S,
    );
    GucRegistry::define_bool_guc(
        c"mfa_auth.audit_log_server",
        c"Whether each MFA event is also written to the server log, as one line of JSON (for a SIEM; works with log_destination = jsonlog).",
        c"The line is \"mfa_auth audit: \" followed by the event's payload.",
        &AUDIT_LOG_SERVER,
        GucContext::Sighup,
        GucFlags::default(),
    );
    GucRegistry::define_int_guc(
        c"mfa_auth.challenge_expiry",
        c"How long an MFA challenge can be verified after it is created.",
        c"After this time verify_challenge refuses the challenge (SQLSTATE 28000).",
        &CHALLENGE_EXPIRY,
        1,
        86_400,
        GucContext::Suset,
        GucFlags::UNIT_S,
    );
    GucRegistry::define_int_guc(
        c"mfa_auth.max_failed_attempts",
        c"Failed verifications after which a factor is locked out.",
        c"A locked factor refuses every code, right or wrong, for mfa_auth.lockout_duration.",
        &MAX_FAILED_ATTEMPTS,
        1,
        1000,
        GucContext::Suset,
        GucFlags::default(),
    );
    GucRegistry::define_int_guc(
        c"mfa_auth.lockout_duration",
        c"How long a factor stays locked after too many failed verifications.",
        c"",
        &LOCKOUT_DURATION,
        1,
        604_800,
        GucContext::Suset,
        GucFlags::UNIT_S,
    );
    GucRegistry::define_int_guc(
        c"mfa_auth.phone_resend_interval",
        c"Minimum time between two challenges of one phone factor.",
        c"",
        &PHONE_RESEND_INTERVAL,
        0,
        86_400,
        GucContext::Suset,
        GucFlags::UNIT_S,
    );
    GucRegistry::define_int_guc(
        c"mfa_auth.totp_window",
        c"TOTP time steps accepted either side of the current one.",
        c"",
        &TOTP_WINDOW,
        0,
        10,
        GucContext::Suset,
        GucFlags::default(),
    );
    GucRegistry::define_string_guc(
        c"mfa_auth.webauthn_rp_id",
        c"WebAuthn relying party id: the domain credentials are scoped to (e.g. example.com).",
        c"Every origin in mfa_auth.webauthn_origins must be this domain or a subdomain of it.",
        &WEBAUTHN_RP_ID,
        GucContext::Suset,
        GucFlags::default(),
    );
    GucRegistry::define_string_guc(
        c"mfa_auth.webauthn_rp_name",
        c"WebAuthn relying party name shown by browsers and authenticators (default: the rp id).",
        c"",
        &WEBAUTHN_RP_NAME,
        GucContext::Suset,
        GucFlags::default(),
    );
    GucRegistry::define_string_guc(
        c"mfa_auth.webauthn_origins",
        c"Comma-separated exact origins WebAuthn responses may come from (e.g. https://app.example.com).",
        c"https origins, or http://localhost[:port] for development.",
        &WEBAUTHN_ORIGINS,
        GucContext::Suset,
        GucFlags::default(),
    );
    GucRegistry::define_string_guc(
        c"mfa_auth.webauthn_user_verification",
        c"WebAuthn user verification: required, preferred (default) or discouraged.",
        c"With required, a response without the UV flag is refused.",
        &WEBAUTHN_USER_VERIFICATION,
        GucContext::Suset,
        GucFlags::default(),
    );
    // SAFETY (the three below): the hooks only bump counters; they cannot panic or raise.
    unsafe {
        GucRegistry::define_string_guc_with_hooks(
            c"mfa_auth.jwt_claims_roles",
            c"Roles whose request.jwt.claims (sub, session_id) mfa_auth trusts (gateway mode).",
            c"Comma-separated role names, e.g. the roles PostgREST switches to. For every other role the claims are ignored.",
            &JWT_CLAIMS_ROLES,
            GucContext::Suset,
            GucFlags::default(),
            None,
            Some(identity_changed_string),
            None,
        );
        GucRegistry::define_bool_guc_with_hooks(
            c"mfa_auth.database_sessions",
            c"Whether a direct connection is an MFA session of its own (psql self-service).",
            c"Off by default: behind a transaction pooler several clients share one server connection, and so would share its aal2. Turn it on (per database or role) only where each client has its own server connection: direct connections, or PgBouncer in session mode.",
            &DATABASE_SESSIONS,
            GucContext::Suset,
            GucFlags::default(),
            None,
            Some(identity_changed_bool),
            None,
        );
        if definable(c"request.jwt.claims") {
            GucRegistry::define_string_guc_with_hooks(
                c"request.jwt.claims",
                c"The verified JWT claims of the current request (set by the gateway, e.g. PostgREST).",
                c"mfa_auth reads sub and session_id from it for roles listed in mfa_auth.jwt_claims_roles.",
                &JWT_CLAIMS,
                GucContext::Userset,
                GucFlags::default(),
                None,
                Some(identity_changed_string),
                None,
            );
        }
    }
    // SAFETY: the hooks cannot panic; they only read their arguments and settings.
    unsafe {
        GucRegistry::define_string_guc_with_hooks(
            c"mfa_auth.encryption_keys",
            c"Deprecated: master keys that encrypt TOTP secrets at rest, in the setting itself (use mfa_auth.encryption_keys_file).",
            c"key_id:base64-of-32-bytes, comma-separated, current key first. Its value reaches the server log when a reload changes it.",
            &ENCRYPTION_KEYS,
            GucContext::Suset,
            GucFlags::SUPERUSER_ONLY | GucFlags::NO_SHOW_ALL,
            Some(crate::secrets::check_keys),
            None,
            Some(crate::secrets::show_keys),
        );
        GucRegistry::define_string_guc_with_hooks(
            c"mfa_auth.encryption_keys_file",
            c"File of the master keys that encrypt TOTP secrets and key phone-code hashes.",
            c"One key_id:base64-of-32-bytes per line, current key first; owned by the server's OS user, mode 0600 or stricter. Re-read on reload.",
            &ENCRYPTION_KEYS_FILE,
            GucContext::Sighup,
            GucFlags::SUPERUSER_ONLY,
            Some(crate::secrets::check_key_file),
            Some(crate::secrets::assign_key_file),
            None,
        );
    }
}
