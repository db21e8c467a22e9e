//! Self-service MFA for the current user (auth.uid()), callable by PUBLIC: enroll a TOTP
//! factor, verify a code, list and remove one's own factors. A caller can never reach
//! another user's factor through these: every statement is restricted to auth.uid().
//! Once the user has a verified factor, enrolling another or removing a verified one needs
//! a session that is aal2 for the user (as in Supabase Auth).

use pgrx::prelude::*;

use crate::challenges::{create, verify, Lookup, Via};
use crate::error::{raise, required, MfaError, OrRaise};
use crate::factor_types::FactorType;
use crate::factors::{enroll_totp_for, require_entitled, unenroll};
use crate::session::{caller_role, identity, to_pg};
use crate::spi_util::{run, Stmt};

/// The current user and session of a self-service call. In database-session mode a
/// session exists only with mfa_auth.database_sessions on: without it, `function` refuses
/// with 55000 rather than acting for a session that is not there (never a silent aal1).
pub fn me(function: &'static str) -> (pgrx::Uuid, Option<pgrx::Uuid>) {
    let me = identity();
    let Some(uid) = me.uid else { raise(MfaError::NoAuthenticatedUser) };
    if !me.gateway && me.session_id.is_none() {
        raise(MfaError::DatabaseSessionsOff(function));
    }
    (to_pg(Some(uid)).expect("Some"), to_pg(me.session_id))
}

/// The caller's factors of type `$3` (at most 2 rows: enough to tell "one" from "several"),
/// or just `$2` when given and owned by the caller.
const MY_FACTOR: Stmt = Stmt {
    sql: "SELECT id FROM auth.mfa_factors
           WHERE user_id = $1 AND factor_type::text = $3 AND ($2::uuid IS NULL OR id = $2)
           ORDER BY created_at LIMIT 2",
    args: &[pg_sys::UUIDOID, pg_sys::UUIDOID, pg_sys::TEXTOID],
};

/// The current user's factor of type `t` that a self-service call acts on: `factor_id` when
/// given (and theirs), else their only one; `none` when there is none, 21000 when several.
pub fn my_factor(
    client: &mut pgrx::spi::SpiClient<'_>,
    user_id: pgrx::Uuid,
    factor_id: Option<pgrx::Uuid>,
    t: FactorType,
    none: MfaError,
) -> pgrx::Uuid {
    let found = run(client, &MY_FACTOR, &[user_id.into(), factor_id.into(), t.sql_name().into()]);
    match found.len() {
        0 => raise(none),
        1 => found.first().get(1).or_raise().expect("id"),
        _ => raise(MfaError::SeveralFactors),
    }
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
    crate::error::require_writable("auth.enroll_my_totp()");
    let (user_id, session) = me("auth.enroll_my_totp");
    Spi::connect_mut(|client| require_entitled(client, user_id, session, None, "enroll another factor"));
    let account = if crate::session::in_gateway_mode() { user_id.to_string() } else { caller_role() };
    let database =
        Spi::get_one::<String>("SELECT pg_catalog.current_database()::pg_catalog.text").or_raise().unwrap_or_default();
    let issuer = issuer.or(Some(database.as_str()));
    TableIterator::once(enroll_totp_for(user_id, friendly_name, issuer, Some(&account), &account))
}

/// Challenge and verify in one call for the current user's TOTP factor (the only one
/// when `factor_id` is NULL), recording the AMR claim for auth.session_id(). All
/// replay and lockout rules of verify_challenge apply; a wrong code returns false.
#[pg_extern(volatile, security_definer)]
#[search_path(pg_catalog, pg_temp)]
fn mfa_verify(code: Option<&str>, factor_id: default!(Option<pgrx::Uuid>, "NULL")) -> bool {
    crate::error::require_writable("auth.mfa_verify()");
    let code = required(code, "code");
    // Any role can call this, inside a transaction it controls: unless failures are
    // counted in shared memory, refuse where a ROLLBACK could undo the count.
    crate::attempt_limits::require_durable_or_autocommit("auth.mfa_verify");
    let (user_id, session) = me("auth.mfa_verify");
    Spi::connect_mut(|client| {
        let factor = my_factor(client, user_id, factor_id, FactorType::Totp, MfaError::NoFactor);
        let challenge = create(client, factor, None).id;
        verify(client, Lookup::Challenge, MfaError::ChallengeNotFound, challenge, code, None, session, Via::Code, None)
    })
}

/// Removes one of the current user's factors (and the claims it granted). A verified
/// factor needs an aal2 session.
#[pg_extern(volatile, security_definer)]
#[search_path(pg_catalog, pg_temp)]
fn unenroll_my_factor(factor_id: Option<pgrx::Uuid>) {
    crate::error::require_writable("auth.unenroll_my_factor()");
    let factor_id = required(factor_id, "factor_id");
    let (user_id, session) = me("auth.unenroll_my_factor");
    unenroll(factor_id, |client, owner, verified| {
        // Another user's factor is answered like one that does not exist.
        if owner != user_id {
            raise(MfaError::FactorNotFound);
        }
        if verified {
            require_entitled(client, user_id, session, None, "remove a verified factor");
        }
    });
}
