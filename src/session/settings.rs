//! The settings that decide *who* the caller is: `mfa_auth.jwt_claims_roles`,
//! `mfa_auth.database_sessions`, and the gateway's `request.jwt.claims`. Each has an assign
//! hook that drops the per-statement identity cache (src/session/mod.rs): Postgres calls it
//! on every change, including `set_config` inside a DO block and the restore at ROLLBACK, so
//! a cached identity or aal never outlives the setting it came from.

use std::ffi::CString;

use pgrx::guc::{GucContext, GucFlags, GucRegistry, GucSetting};
use pgrx::pg_sys;

use super::claims_changed;
use crate::pg::guard::hook_body;

static JWT_CLAIMS_ROLES: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(None);
static DATABASE_SESSIONS: GucSetting<bool> = GucSetting::<bool>::new(false);
/// PostgREST's `request.jwt.claims`, defined here (when no one else defines it) only so
/// that its changes reach the assign hook; it stays settable by everyone, as before.
static JWT_CLAIMS: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(None);

/// mfa_auth.jwt_claims_roles: the roles whose request.jwt.claims are trusted.
pub fn jwt_claims_roles() -> Option<String> {
    JWT_CLAIMS_ROLES.get().map(|l| l.to_string_lossy().into_owned())
}

/// mfa_auth.database_sessions.
pub fn database_sessions() -> bool {
    DATABASE_SESSIONS.get()
}

/// Assign hooks of the identity settings: cannot fail, allocate or raise.
unsafe extern "C-unwind" fn identity_changed_bool(_new: bool, _extra: *mut core::ffi::c_void) {
    hook_body((), claims_changed);
}
unsafe extern "C-unwind" fn identity_changed_string(_new: *const core::ffi::c_char, _extra: *mut core::ffi::c_void) {
    hook_body((), claims_changed);
}

/// Whether `name` is free for this library to define: not defined, or only a placeholder
/// (a value set before the library was loaded, which the definition takes over).
fn definable(name: &core::ffi::CStr) -> bool {
    // SAFETY: missing_ok = true: returns 0 for an unknown name instead of raising.
    let flags = unsafe { pg_sys::GetConfigOptionFlags(name.as_ptr(), true) };
    flags == 0 || flags & pg_sys::GUC_CUSTOM_PLACEHOLDER as i32 != 0
}

pub fn init() {
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
}
