//! Checks of the schema the extension's statements run on: that `auth` is the extension's own
//! schema, safe to name, and at a version this library serves (once per backend).

use pgrx::prelude::*;
use pgrx::spi::SpiClient;

use crate::pg::error::{raise, MfaError};

thread_local! {
    /// Whether this backend has checked schema `auth` ([`check_schema`]).
    static SCHEMA_CHECKED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// The extension's schema, by OID (so a rename or a look-alike cannot answer for it): its
/// name, its owner's name, whether the owner is a superuser, and whether a role that is not a
/// superuser (or PUBLIC) holds CREATE on it.
const SCHEMA_STATE: &str = "SELECT n.nspname::pg_catalog.text, r.rolname::pg_catalog.text, r.rolsuper,
        EXISTS (SELECT 1 FROM pg_catalog.aclexplode(n.nspacl) a
                 WHERE a.privilege_type OPERATOR(pg_catalog.=) 'CREATE'
                   AND NOT COALESCE((SELECT g.rolsuper FROM pg_catalog.pg_roles g
                                      WHERE g.oid OPERATOR(pg_catalog.=) a.grantee), false)),
        e.extversion::pg_catalog.text
   FROM pg_catalog.pg_extension e
   JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) e.extnamespace
   JOIN pg_catalog.pg_roles r ON r.oid OPERATOR(pg_catalog.=) n.nspowner
  WHERE e.extname OPERATOR(pg_catalog.=) 'mfa_auth'";

/// The versions of the extension's SQL that this library refuses to run statements for (the
/// database must be updated first): 0.1.0, whose tables predate the verified claims.
const UNSERVED_VERSIONS: [&str; 1] = ["0.1.0"];

/// Before this backend's first statement on the extension's objects: every statement names
/// them in schema `auth`, so that name must be the extension's schema, owned by a superuser,
/// with CREATE for no one else (what CREATE EXTENSION and the 0.3.0 update check). Otherwise
/// whoever owns it or may create in it could rename it and plant look-alikes that these
/// statements (run as the extension's owner) would use: refused with 42501. Only a superuser
/// can change what this checks, so once per backend is enough.
pub fn check_schema(client: &SpiClient<'_>) {
    if SCHEMA_CHECKED.with(std::cell::Cell::get) {
        return;
    }
    let rows =
        pinned(|| client.select(SCHEMA_STATE, None, &[])).unwrap_or_else(|e| raise(MfaError::Internal(e.to_string())));
    let Some(row) = rows.into_iter().next() else {
        raise(MfaError::SchemaUnsafe("the extension mfa_auth is not installed in this database".into()))
    };
    let name: String = row.get(1).ok().flatten().unwrap_or_default();
    let owner: String = row.get(2).ok().flatten().unwrap_or_default();
    let owner_super: bool = row.get(3).ok().flatten().unwrap_or(false);
    let foreign_create: bool = row.get(4).ok().flatten().unwrap_or(true);
    if name != "auth" {
        raise(MfaError::SchemaUnsafe(format!("the extension's schema was renamed to \"{name}\"")));
    }
    if !owner_super {
        raise(MfaError::SchemaUnsafe(format!("it belongs to role \"{owner}\", which is not a superuser")));
    }
    if foreign_create {
        raise(MfaError::SchemaUnsafe("a role that is not a superuser may create objects in it".into()));
    }
    // 0.1.0's tables lack what every verification and auth.aal() read (the verified claims,
    // recovery codes): refused with a hint, until the update, rather than failing on a missing
    // relation. (Not while CREATE or ALTER EXTENSION runs a script of this extension.)
    let version: String = row.get(5).ok().flatten().unwrap_or_default();
    // SAFETY: a backend-global flag the server sets while it runs an extension's script.
    if UNSERVED_VERSIONS.contains(&version.as_str()) && !unsafe { pg_sys::creating_extension } {
        raise(MfaError::NotUpdated(version));
    }
    SCHEMA_CHECKED.with(|c| c.set(true));
}

/// The search_path every statement of the extension is parsed, planned and run under: the
/// one the SECURITY DEFINER functions pin with their SET clause.
pub const SEARCH_PATH: &core::ffi::CStr = c"pg_catalog, pg_temp";

/// Runs `f` with `search_path = pg_catalog, pg_temp`, as a SET clause would: a statement the
/// extension runs must never resolve a name, type, operator or function in a schema that the
/// caller, or the database's owner through `ALTER DATABASE ... SET search_path`, put before
/// pg_catalog (a domain `evil.text` whose CHECK runs its owner's code as whoever casts to
/// `text`). The statements also qualify every name; this is the second wall, and it covers
/// what the plan cache re-parses: a cached plan is analysed again when it runs under another
/// search_path than it was made under.
///
/// Free when the path is pinned already (every SECURITY DEFINER entry point); otherwise a GUC
/// nest level, as fmgr makes for a SET clause: restored when `f` returns, and by the
/// (sub)transaction's abort when `f` raises.
pub fn pinned<R>(f: impl FnOnce() -> R) -> R {
    // SAFETY: namespace_search_path is the GUC's current value (never NULL after start-up).
    let already = unsafe {
        let p = pg_sys::namespace_search_path;
        !p.is_null() && core::ffi::CStr::from_ptr(p) == SEARCH_PATH
    };
    if already {
        return f();
    }
    // SAFETY: the same calls fmgr_security_definer makes for a function's SET clause.
    let level = unsafe {
        let level = pg_sys::NewGUCNestLevel();
        pg_sys::set_config_option(
            c"search_path".as_ptr(),
            SEARCH_PATH.as_ptr(),
            pg_sys::GucContext::PGC_USERSET,
            pg_sys::GucSource::PGC_S_SESSION,
            pg_sys::GucAction::GUC_ACTION_SAVE,
            true,
            0,
            false,
        );
        level
    };
    let r = f();
    // SAFETY: pops the level made above (nothing inside may leave one open: each is popped
    // the same way or by an abort).
    unsafe { pg_sys::AtEOXact_GUC(true, level) };
    r
}
