//! Challenges and their verification by code: auth.create_challenge(), auth.verify_challenge(),
//! auth.verify_factor(), and the self-service auth.mfa_verify(). Creating is
//! src/challenges/create.rs; every verification is the pipeline's (src/verification/).

use pgrx::prelude::*;

use crate::challenges::create::create;
use crate::factor_kinds::row::Lookup;
use crate::factor_kinds::{FactorType, Via};
use crate::factors::my_factor;
use crate::pg::error::{required, MfaError};
use crate::verification::{verify, Attempt};

/// Creates a challenge for a factor. For a phone factor it also makes the SMS
/// code, stores only its salted hash and returns the code (once). For a WebAuthn factor it
/// returns the options for `navigator.credentials.create()` (an unverified factor) or
/// `get()` (a verified one) in `webauthn`. Since 0.2.0 (the `webauthn` column); its C
/// symbol is new, so that 0.1.0's definition keeps its own (below).
#[pg_extern(volatile, security_definer, name = "create_challenge")]
#[search_path(pg_catalog, pg_temp)]
fn create_challenge_v2(
    factor_id: Option<pgrx::Uuid>,
    ip_address: Option<pgrx::Inet>,
) -> TableIterator<
    'static,
    (
        name!(challenge_id, pgrx::Uuid),
        name!(expires_at, TimestampWithTimeZone),
        name!(code, Option<String>),
        name!(webauthn, Option<pgrx::JsonB>),
    ),
> {
    crate::pg::error::require_writable("auth.create_challenge()");
    let factor_id = required(factor_id, "factor_id");
    let ip_address = required(ip_address, "ip_address");
    let c = Spi::connect_mut(|client| create(client, factor_id, Some(ip_address)));
    let webauthn = c.webauthn.map(pgrx::JsonB);
    TableIterator::once((c.id, c.expires, c.code, webauthn))
}

/// 0.1.0's auth.create_challenge (three columns), still exported under its C symbol
/// `create_challenge_wrapper`, so that a database on 0.1.0's SQL gets this library's refusal
/// (55000, "run ALTER EXTENSION mfa_auth UPDATE": src/pg/schema.rs) instead of a missing
/// symbol. Not in 0.2.0's SQL.
#[pg_extern(sql = false)]
fn create_challenge(
    factor_id: Option<pgrx::Uuid>,
    ip_address: Option<pgrx::Inet>,
) -> TableIterator<
    'static,
    (name!(challenge_id, pgrx::Uuid), name!(expires_at, TimestampWithTimeZone), name!(code, Option<String>)),
> {
    crate::pg::error::require_writable("auth.create_challenge()");
    let factor_id = required(factor_id, "factor_id");
    let ip_address = required(ip_address, "ip_address");
    let c = Spi::connect_mut(|client| create(client, factor_id, Some(ip_address)));
    TableIterator::once((c.id, c.expires, c.code))
}

/// Verifies `code` against a challenge. True: verified (and the session's AMR claim
/// recorded when `session_id` is given). False: wrong code, counted.
#[pg_extern(volatile, security_definer)]
#[search_path(pg_catalog, pg_temp)]
fn verify_challenge(
    challenge_id: Option<pgrx::Uuid>,
    code: Option<&str>,
    ip_address: default!(Option<pgrx::Inet>, "NULL"),
    session_id: default!(Option<pgrx::Uuid>, "NULL"),
) -> bool {
    crate::pg::error::require_writable("auth.verify_challenge()");
    let challenge_id = required(challenge_id, "challenge_id");
    let code = required(code, "code");
    let attempt = Attempt {
        of: Lookup::Challenge(challenge_id),
        response: code,
        ip_address,
        session_id,
        via: Via::Code,
        owner: None,
    };
    Spi::connect_mut(|client| verify(client, &attempt))
}

/// Verifies `code` against the factor's newest open challenge.
#[pg_extern(volatile, security_definer)]
#[search_path(pg_catalog, pg_temp)]
fn verify_factor(
    factor_id: Option<pgrx::Uuid>,
    code: Option<&str>,
    ip_address: default!(Option<pgrx::Inet>, "NULL"),
    session_id: default!(Option<pgrx::Uuid>, "NULL"),
) -> bool {
    crate::pg::error::require_writable("auth.verify_factor()");
    let factor_id = required(factor_id, "factor_id");
    let code = required(code, "code");
    let attempt =
        Attempt { of: Lookup::Factor(factor_id), response: code, ip_address, session_id, via: Via::Code, owner: None };
    Spi::connect_mut(|client| verify(client, &attempt))
}

/// Challenge and verify in one call for the current user's TOTP factor (the only one
/// when `factor_id` is NULL), recording the AMR claim for auth.session_id(). All
/// replay and lockout rules of verify_challenge apply; a wrong code returns false.
#[pg_extern(volatile, security_definer)]
#[search_path(pg_catalog, pg_temp)]
fn mfa_verify(code: Option<&str>, factor_id: default!(Option<pgrx::Uuid>, "NULL")) -> bool {
    crate::pg::error::require_writable("auth.mfa_verify()");
    let code = required(code, "code");
    // Any role can call this, inside a transaction it controls: unless failures are
    // counted in shared memory, refuse where a ROLLBACK could undo the count.
    crate::attempt_limits::require_durable_or_autocommit("auth.mfa_verify");
    let (user_id, session) = crate::session::me("auth.mfa_verify");
    Spi::connect_mut(|client| {
        let factor = my_factor(client, user_id, factor_id, FactorType::Totp, MfaError::NoFactor);
        let challenge = create(client, factor, None).id;
        let attempt = Attempt {
            of: Lookup::Challenge(challenge),
            response: code,
            ip_address: None,
            session_id: session,
            via: Via::Code,
            owner: None,
        };
        verify(client, &attempt)
    })
}
