//! Enrolling, unlocking and removing factors: auth.enroll_totp(), auth.enroll_phone(),
//! auth.unenroll_factor(), auth.unlock_factor(), and the self-service auth.enroll_my_totp() and
//! auth.unenroll_my_factor(). WebAuthn factors are src/api/webauthn.rs; the work is src/factors.rs.

use pgrx::prelude::*;

use crate::factors;
use crate::pg::error::{require_writable, required};

/// Enrolls a new, unverified TOTP factor with a fresh 20-byte secret. Returns the
/// secret once, with its otpauth URI and a QR code of it that draws in psql.
#[pg_extern(volatile, security_definer)]
#[search_path(pg_catalog, pg_temp)]
fn enroll_totp(
    user_id: Option<pgrx::Uuid>,
    friendly_name: default!(Option<&str>, "NULL"),
    issuer: default!(Option<&str>, "NULL"),
    account_name: default!(Option<&str>, "NULL"),
) -> TableIterator<'static, (name!(factor_id, pgrx::Uuid), name!(secret, String), name!(uri, String), name!(qr, String))>
{
    require_writable("auth.enroll_totp()");
    let user_id = required(user_id, "user_id");
    let user_text = user_id.to_string();
    TableIterator::once(factors::enroll_totp_for(user_id, friendly_name, issuer, account_name, &user_text, None))
}

/// Enrolls a new, unverified phone factor for an E.164 number.
#[pg_extern(volatile, security_definer)]
#[search_path(pg_catalog, pg_temp)]
fn enroll_phone(
    user_id: Option<pgrx::Uuid>,
    phone: Option<&str>,
    friendly_name: default!(Option<&str>, "NULL"),
) -> pgrx::Uuid {
    require_writable("auth.enroll_phone()");
    factors::enroll_phone(required(user_id, "user_id"), required(phone, "phone"), friendly_name)
}

/// Deletes a factor, its challenges, and the MFA claims it granted. Removing the user's last
/// verified factor also deletes their recovery codes (they back a factor up).
#[pg_extern(volatile, security_definer)]
#[search_path(pg_catalog, pg_temp)]
fn unenroll_factor(factor_id: Option<pgrx::Uuid>) {
    require_writable("auth.unenroll_factor()");
    factors::unenroll(required(factor_id, "factor_id"), |_, _, _| {});
}

/// Lifts a factor's lockout and forgets its failed attempts, in its row and in the
/// shared-memory attempt table.
#[pg_extern(volatile, security_definer)]
#[search_path(pg_catalog, pg_temp)]
fn unlock_factor(factor_id: Option<pgrx::Uuid>) {
    require_writable("auth.unlock_factor()");
    factors::unlock(required(factor_id, "factor_id"));
}

/// Signs a user out of every session: removes every claim of each session in which the user
/// has an MFA claim (aal1 everywhere, as a reject of mfa_auth.verification_hook does); returns
/// how many claims were removed.
#[pg_extern(volatile, security_definer)]
#[search_path(pg_catalog, pg_temp)]
fn sign_out_user(user_id: Option<pgrx::Uuid>) -> i64 {
    require_writable("auth.sign_out_user()");
    crate::amr::sign_out_user(required(user_id, "user_id"))
}

/// Enrolls a TOTP factor for the current user. The otpauth label is ISSUER:ACCOUNT with
/// the current database as default issuer and the role (or user id) as account.
#[pg_extern(volatile, security_definer)]
#[search_path(pg_catalog, pg_temp)]
fn enroll_my_totp(
    friendly_name: default!(Option<&str>, "NULL"),
    issuer: default!(Option<&str>, "NULL"),
) -> TableIterator<'static, (name!(factor_id, pgrx::Uuid), name!(secret, String), name!(uri, String), name!(qr, String))>
{
    require_writable("auth.enroll_my_totp()");
    TableIterator::once(factors::enroll_my_totp(friendly_name, issuer))
}

/// Removes one of the current user's factors (and the claims it granted). A verified
/// factor needs an aal2 session.
#[pg_extern(volatile, security_definer)]
#[search_path(pg_catalog, pg_temp)]
fn unenroll_my_factor(factor_id: Option<pgrx::Uuid>) {
    require_writable("auth.unenroll_my_factor()");
    factors::unenroll_mine(required(factor_id, "factor_id"));
}
