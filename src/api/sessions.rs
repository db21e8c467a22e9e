//! Who is calling and how their session authenticated: auth.uid(), auth.session_id(),
//! auth.aal(), auth.amr(), auth.mfa_verified_within(), auth.role_user_id(), the enforcement
//! helpers auth.aal_next(), auth.aal_next_of() and auth.mfa_satisfied(), and auth.record_amr().
//! The rules and the per-statement cache are src/session/; auth.aal() and
//! auth.mfa_satisfied() also have C entry points here that answer a cache hit without
//! entering pgrx's wrapper.

use std::ffi::CStr;

use pgrx::prelude::*;

use crate::pg::error::{raise, required, MfaError};
use crate::session::{self, identity, role_uuid, to_pg, AAL_FAST, SATISFIED_FAST};

/// The current end user: the `sub` claim in gateway mode, else the caller's role as a UUID.
#[pg_extern(stable, parallel_restricted)]
fn uid() -> Option<pgrx::Uuid> {
    to_pg(identity().uid)
}

/// The current session: the `session_id` claim in gateway mode, else this connection's
/// own random session id.
#[pg_extern(stable, parallel_restricted)]
fn session_id() -> Option<pgrx::Uuid> {
    to_pg(identity().session_id)
}

/// The authenticator assurance level of the current session (SQL: RETURNS auth.aal_level,
/// declared in sql/session.sql; the value is the enum label's OID).
#[pg_extern(sql = false)]
fn aal() -> pg_sys::Oid {
    session::aal()
}

/// The C entry point of auth.aal() (sql/session.sql). On a cache hit, which is every row
/// but the first of a statement, it answers from the cache without entering pgrx's
/// wrapper; this path owns nothing with a destructor and cannot raise. On a miss it calls
/// the pgrx-guarded `aal_wrapper`, which runs the look-up and raises errors properly.
#[no_mangle]
pub unsafe extern "C-unwind" fn mfa_auth_aal(fcinfo: pg_sys::FunctionCallInfo) -> pg_sys::Datum {
    match AAL_FAST.hit() {
        Some(answer) => pg_sys::Datum::from(answer),
        None => aal_wrapper(fcinfo),
    }
}

static FINFO_V1: pg_sys::Pg_finfo_record = pg_sys::Pg_finfo_record { api_version: 1 };

#[no_mangle]
pub extern "C" fn pg_finfo_mfa_auth_aal() -> &'static pg_sys::Pg_finfo_record {
    &FINFO_V1
}

/// The highest level the current user can reach: aal2 once they have a verified factor
/// (Supabase Auth's nextLevel), else aal1. SQL: sql/enforcement.sql.
#[pg_extern(sql = false)]
fn aal_next() -> pg_sys::Oid {
    session::aal_next()
}

/// auth.aal_next() of any user, for service code (sql/enforcement.sql; not for PUBLIC: it
/// tells whether a user has MFA).
#[pg_extern(sql = false)]
fn aal_next_of(user_id: pgrx::Uuid) -> pg_sys::Oid {
    session::aal_next_of(user_id)
}

/// auth.aal() >= auth.aal_next(): the session has MFA, or its user has no verified factor.
/// SQL: sql/enforcement.sql, entry point mfa_auth_mfa_satisfied.
#[pg_extern(sql = false)]
fn mfa_satisfied() -> bool {
    session::mfa_satisfied()
}

/// The C entry point of auth.mfa_satisfied(): auth.aal()'s fast path (1: false, 2: true).
#[no_mangle]
pub unsafe extern "C-unwind" fn mfa_auth_mfa_satisfied(fcinfo: pg_sys::FunctionCallInfo) -> pg_sys::Datum {
    match SATISFIED_FAST.hit() {
        Some(answer) => pg_sys::Datum::from(answer == 2),
        None => mfa_satisfied_wrapper(fcinfo),
    }
}

#[no_mangle]
pub extern "C" fn pg_finfo_mfa_auth_mfa_satisfied() -> &'static pg_sys::Pg_finfo_record {
    &FINFO_V1
}

/// auth.session_amr() of the current session and user ('[]' without a session or user).
#[pg_extern(stable, parallel_restricted)]
fn amr() -> pgrx::JsonB {
    session::amr()
}

/// Step-up freshness: whether the current session's newest MFA claim is younger than
/// `max_age`, measured at the start of the current statement.
#[pg_extern(stable, parallel_restricted)]
fn mfa_verified_within(max_age: Option<Interval>) -> bool {
    let max_age = required(max_age, "max_age").as_micros();
    if max_age < 0 {
        raise(MfaError::invalid("max_age", "must not be negative"));
    }
    session::verified_within(max_age)
}

/// The user id of a database role: UUID v5 of its name (SQL signature in sql/session.sql).
#[pg_extern(sql = false, immutable, parallel_safe)]
fn role_user_id(role: Option<&CStr>) -> pgrx::Uuid {
    let role = required(role, "role");
    to_pg(Some(role_uuid(&role.to_string_lossy()))).expect("Some")
}

/// Records that a session completed a (non-MFA) authentication method: a new claim, or the
/// existing one's `updated_at` moved to now. Returns the claim id. MFA methods are refused:
/// a claim of one without the factor that earned it would make no one aal2.
#[pg_extern(volatile, security_definer)]
#[search_path(pg_catalog, pg_temp)]
fn record_amr(session_id: Option<pgrx::Uuid>, authentication_method: Option<&str>) -> pgrx::Uuid {
    crate::pg::error::require_writable("auth.record_amr()");
    let session_id = required(session_id, "session_id");
    let method = required(authentication_method, "authentication_method");
    crate::amr::record(session_id, method)
}
