//! The SQL functions of WebAuthn factors: enroll, verify, and their self-service forms for
//! gateway mode (PostgREST RPC from a browser) and psql. Challenges are created by
//! auth.create_challenge (or auth.webauthn_options), like every factor's.

use pgrx::prelude::*;

use crate::challenges::create::create;
use crate::factor_kinds::row::Lookup;
use crate::factor_kinds::{FactorType, Via};
use crate::factors::{enroll_my_webauthn as enroll_mine, enroll_webauthn as enroll, my_factor};
use crate::pg::error::{require_writable, required, MfaError};
use crate::pg::types::CredentialJson;
use crate::verification::{verify, Attempt};

/// Enrolls a new, unverified WebAuthn factor. Its first challenge (auth.create_challenge)
/// carries the registration options; auth.verify_webauthn with the browser's response
/// registers the credential and verifies the factor.
#[pg_extern(volatile, security_definer)]
#[search_path(pg_catalog, pg_temp)]
fn enroll_webauthn(user_id: Option<pgrx::Uuid>, friendly_name: default!(Option<&str>, "NULL")) -> pgrx::Uuid {
    require_writable("auth.enroll_webauthn()");
    enroll(required(user_id, "user_id"), friendly_name, None)
}

/// Verifies a WebAuthn challenge with the browser's `PublicKeyCredential.toJSON()`:
/// registration for an unverified factor, authentication for a verified one. True: verified
/// (and, with `session_id`, the session's `mfa/webauthn` claim recorded). False: a
/// well-formed response that failed a check, counted; the challenge is then used up.
/// Malformed input raises 22023 naming the field.
#[pg_extern(volatile, security_definer)]
#[search_path(pg_catalog, pg_temp)]
fn verify_webauthn(
    challenge_id: Option<pgrx::Uuid>,
    credential: Option<CredentialJson>,
    ip_address: default!(Option<pgrx::Inet>, "NULL"),
    session_id: default!(Option<pgrx::Uuid>, "NULL"),
) -> bool {
    require_writable("auth.verify_webauthn()");
    let challenge_id = required(challenge_id, "challenge_id");
    let credential = required(credential, "credential");
    verify_credential(challenge_id, &credential, ip_address, session_id, None)
}

/// The verification behind verify_webauthn and mfa_verify_webauthn (`owner`: the current user,
/// whose challenge it must be).
fn verify_credential(
    challenge_id: pgrx::Uuid,
    credential: &CredentialJson,
    ip_address: Option<pgrx::Inet>,
    session_id: Option<pgrx::Uuid>,
    owner: Option<pgrx::Uuid>,
) -> bool {
    let text = credential.text();
    let attempt = Attempt {
        of: Lookup::Challenge(challenge_id),
        response: text,
        ip_address,
        session_id,
        via: Via::Webauthn,
        owner,
    };
    Spi::connect_mut(|client| verify(client, &attempt))
}

/// Enrolls a WebAuthn factor for the current user (an aal2 session is needed once the user
/// has a verified factor). Then auth.webauthn_options(factor_id) and auth.mfa_verify_webauthn.
#[pg_extern(volatile, security_definer)]
#[search_path(pg_catalog, pg_temp)]
fn enroll_my_webauthn(friendly_name: default!(Option<&str>, "NULL")) -> pgrx::Uuid {
    require_writable("auth.enroll_my_webauthn()");
    enroll_mine(friendly_name)
}

/// Creates a challenge for the current user's WebAuthn factor (the only one when
/// `factor_id` is NULL) and returns `{"challenge_id": ..., "webauthn": {"type": "create" |
/// "request", "credential_options": {"publicKey": ...}}}` for the browser.
#[pg_extern(volatile, security_definer)]
#[search_path(pg_catalog, pg_temp)]
fn webauthn_options(factor_id: default!(Option<pgrx::Uuid>, "NULL")) -> pgrx::JsonB {
    require_writable("auth.webauthn_options()");
    let (user_id, _) = crate::session::me("auth.webauthn_options");
    let c = Spi::connect_mut(|client| {
        let factor = my_factor(client, user_id, factor_id, FactorType::Webauthn, MfaError::NoWebauthnFactor);
        create(client, factor, None)
    });
    pgrx::JsonB(serde_json::json!({"challenge_id": c.id.to_string(), "webauthn": c.webauthn}))
}

/// Verifies the browser's response to a challenge from auth.webauthn_options for the current
/// user, recording the `mfa/webauthn` claim for auth.session_id(). False: a failed check,
/// counted (the challenge is used up).
#[pg_extern(volatile, security_definer)]
#[search_path(pg_catalog, pg_temp)]
fn mfa_verify_webauthn(challenge_id: Option<pgrx::Uuid>, credential: Option<CredentialJson>) -> bool {
    require_writable("auth.mfa_verify_webauthn()");
    let challenge_id = required(challenge_id, "challenge_id");
    let credential = required(credential, "credential");
    crate::attempt_limits::require_durable_or_autocommit("auth.mfa_verify_webauthn");
    let (user_id, session) = crate::session::me("auth.mfa_verify_webauthn");
    verify_credential(challenge_id, &credential, None, session, Some(user_id))
}
