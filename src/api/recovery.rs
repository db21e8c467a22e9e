//! Recovery codes: auth.generate_recovery_codes(), auth.verify_recovery_code(),
//! auth.delete_recovery_codes(), and the self-service auth.generate_my_recovery_codes() and
//! auth.mfa_verify_recovery_code(). Sets are generated and deleted by src/recovery.rs; a code
//! is verified by the pipeline (src/verification/), as its fourth factor kind.

use pgrx::prelude::*;

use crate::factor_kinds::row::Lookup;
use crate::factor_kinds::Via;
use crate::pg::error::required;
use crate::recovery::{delete, generate};
use crate::verification::{verify, Attempt};

/// A new set of `count` (4..16) recovery codes for the user, replacing any earlier set. Only
/// for a user with a verified factor, and a session that is aal2 for them. The codes are
/// returned this once, grouped (`7kq4-m2xp-9dwe-j3ab`); only their hashes are stored.
#[pg_extern(volatile, security_definer)]
#[search_path(pg_catalog, pg_temp)]
fn generate_recovery_codes(
    user_id: Option<pgrx::Uuid>,
    session_id: Option<pgrx::Uuid>,
    count: default!(Option<i32>, 10),
) -> SetOfIterator<'static, String> {
    crate::pg::error::require_writable("auth.generate_recovery_codes()");
    let user_id = required(user_id, "user_id");
    let count = required(count, "count");
    SetOfIterator::new(generate(user_id, session_id, count))
}

/// Verifies one of the user's recovery codes (hyphens, spaces and case ignored). True: the
/// code is consumed and, with `session_id`, the session's `mfa/recovery_code` claim recorded
/// (aal2). False: wrong or used, counted; after mfa_auth.max_failed_attempts the user's codes
/// are locked for mfa_auth.lockout_duration. `ip_address` is accepted for the same call shape
/// as the other verifications, and recorded in the audit trail.
#[pg_extern(volatile, security_definer)]
#[search_path(pg_catalog, pg_temp)]
fn verify_recovery_code(
    user_id: Option<pgrx::Uuid>,
    code: Option<&str>,
    ip_address: default!(Option<pgrx::Inet>, "NULL"),
    session_id: default!(Option<pgrx::Uuid>, "NULL"),
) -> bool {
    crate::pg::error::require_writable("auth.verify_recovery_code()");
    let user_id = required(user_id, "user_id");
    let code = required(code, "code");
    let attempt = Attempt {
        of: Lookup::RecoveryCodes(user_id),
        response: code,
        ip_address,
        session_id,
        via: Via::RecoveryCode,
        owner: None,
    };
    Spi::connect_mut(|client| verify(client, &attempt))
}

/// Removes the user's recovery codes (nothing when there are none).
#[pg_extern(volatile, security_definer)]
#[search_path(pg_catalog, pg_temp)]
fn delete_recovery_codes(user_id: Option<pgrx::Uuid>) {
    crate::pg::error::require_writable("auth.delete_recovery_codes()");
    delete(required(user_id, "user_id"));
}

/// Self-service: a new set for the current user, from an aal2 session.
#[pg_extern(volatile, security_definer)]
#[search_path(pg_catalog, pg_temp)]
fn generate_my_recovery_codes(count: default!(Option<i32>, 10)) -> SetOfIterator<'static, String> {
    crate::pg::error::require_writable("auth.generate_my_recovery_codes()");
    let count = required(count, "count");
    let (user_id, session) = crate::session::me("auth.generate_my_recovery_codes");
    Spi::connect_mut(|client| crate::factors::require_fresh(client, user_id, session, "generate recovery codes"));
    SetOfIterator::new(generate(user_id, session, count))
}

/// Self-service: verifies a recovery code of the current user for auth.session_id().
#[pg_extern(volatile, security_definer)]
#[search_path(pg_catalog, pg_temp)]
fn mfa_verify_recovery_code(code: Option<&str>) -> bool {
    crate::pg::error::require_writable("auth.mfa_verify_recovery_code()");
    let code = required(code, "code");
    crate::attempt_limits::require_durable_or_autocommit("auth.mfa_verify_recovery_code");
    let (user_id, session) = crate::session::me("auth.mfa_verify_recovery_code");
    let attempt = Attempt {
        of: Lookup::RecoveryCodes(user_id),
        response: code,
        ip_address: None,
        session_id: session,
        via: Via::RecoveryCode,
        owner: None,
    };
    Spi::connect_mut(|client| verify(client, &attempt))
}
