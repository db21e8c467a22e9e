//! The SQL functions of WebAuthn factors: enroll, verify, and their self-service forms for
//! gateway mode (PostgREST RPC from a browser) and psql. Challenges are created by
//! auth.create_challenge (or auth.webauthn_options), like every factor's.

use pgrx::prelude::*;

use crate::challenges::{create, verify, Lookup, Via};
use crate::error::{raise, required, MfaError};
use crate::factor_types::{webauthn, FactorType};
use crate::factors::{check_friendly_name, insert_factor, require_entitled};
use crate::self_service::my_factor;
use crate::webauthn::limits;

/// A `jsonb` argument whose size is checked before it is converted: a value larger than
/// [`limits::CREDENTIAL_JSON`] is never detoasted or turned into text.
pub enum CredentialJson {
    Text(String),
    TooLong,
}

impl FromDatum for CredentialJson {
    unsafe fn from_polymorphic_datum(datum: pg_sys::Datum, is_null: bool, _: pg_sys::Oid) -> Option<Self> {
        if is_null {
            return None;
        }
        // SAFETY: a jsonb argument datum; toast_raw_datum_size reads only its header (or its
        // TOAST pointer) and returns the size it has detoasted, without detoasting it.
        let size = unsafe { pg_sys::toast_raw_datum_size(datum) };
        if size > limits::CREDENTIAL_JSON {
            return Some(CredentialJson::TooLong);
        }
        // SAFETY: as pgrx's own JsonB conversion: detoast, then jsonb_out to text.
        let text = unsafe {
            let varlena = datum.cast_mut_ptr();
            let detoasted = pg_sys::pg_detoast_datum_packed(varlena);
            let cstr = pgrx::direct_function_call::<&core::ffi::CStr>(pg_sys::jsonb_out, &[Some(detoasted.into())])
                .expect("a jsonb datum has a text form");
            let text = cstr.to_string_lossy().into_owned();
            pg_sys::pfree(cstr.as_ptr() as *mut core::ffi::c_void);
            text
        };
        Some(CredentialJson::Text(text))
    }
}

pgrx::impl_sql_translatable!(CredentialJson, "jsonb");

// SAFETY: as pgrx's own impls for FromDatum types (argue_from_datum): the argument is a jsonb
// datum (the SQL signature says so), unboxed through FromDatum above.
unsafe impl<'fcx> pgrx::callconv::ArgAbi<'fcx> for CredentialJson {
    unsafe fn unbox_arg_unchecked(arg: pgrx::callconv::Arg<'_, 'fcx>) -> Self {
        // (Only reachable through a non-strict signature taking it as non-Option: none does.)
        unsafe { arg.unbox_arg_using_from_datum() }
            .unwrap_or_else(|| crate::error::raise(crate::error::MfaError::NullArgument("credential")))
    }

    unsafe fn unbox_nullable_arg(arg: pgrx::callconv::Arg<'_, 'fcx>) -> pgrx::nullable::Nullable<Self> {
        unsafe { arg.unbox_arg_using_from_datum() }.into()
    }
}

impl CredentialJson {
    fn text(&self) -> &str {
        match self {
            CredentialJson::Text(t) => t,
            CredentialJson::TooLong => raise(MfaError::Webauthn(crate::webauthn::WebauthnError::TooLong {
                field: "credential",
                max: limits::CREDENTIAL_JSON,
            })),
        }
    }
}

fn enroll(user_id: pgrx::Uuid, friendly_name: Option<&str>) -> pgrx::Uuid {
    check_friendly_name(friendly_name);
    // A relying party must be configured before anyone can register (the error names the setting).
    webauthn::config();
    insert_factor(crate::ids::new_factor_id(), user_id, friendly_name, FactorType::Webauthn, None, None)
}

/// Enrolls a new, unverified WebAuthn factor. Its first challenge (auth.create_challenge)
/// carries the registration options; auth.verify_webauthn with the browser's response
/// registers the credential and verifies the factor.
#[pg_extern(volatile, security_definer)]
#[search_path(pg_catalog, pg_temp)]
fn enroll_webauthn(user_id: Option<pgrx::Uuid>, friendly_name: default!(Option<&str>, "NULL")) -> pgrx::Uuid {
    crate::error::require_writable("auth.enroll_webauthn()");
    enroll(required(user_id, "user_id"), friendly_name)
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
    crate::error::require_writable("auth.verify_webauthn()");
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
    Spi::connect_mut(|client| {
        verify(
            client,
            Lookup::Challenge,
            MfaError::ChallengeNotFound,
            challenge_id,
            text,
            ip_address,
            session_id,
            Via::Webauthn,
            owner,
        )
    })
}

/// Enrolls a WebAuthn factor for the current user (an aal2 session is needed once the user
/// has a verified factor). Then auth.webauthn_options(factor_id) and auth.mfa_verify_webauthn.
#[pg_extern(volatile, security_definer)]
#[search_path(pg_catalog, pg_temp)]
fn enroll_my_webauthn(friendly_name: default!(Option<&str>, "NULL")) -> pgrx::Uuid {
    crate::error::require_writable("auth.enroll_my_webauthn()");
    let (user_id, session) = crate::self_service::me("auth.enroll_my_webauthn");
    Spi::connect_mut(|client| require_entitled(client, user_id, session, None, "enroll another factor"));
    enroll(user_id, friendly_name)
}

/// Creates a challenge for the current user's WebAuthn factor (the only one when
/// `factor_id` is NULL) and returns `{"challenge_id": ..., "webauthn": {"type": "create" |
/// "request", "credential_options": {"publicKey": ...}}}` for the browser.
#[pg_extern(volatile, security_definer)]
#[search_path(pg_catalog, pg_temp)]
fn webauthn_options(factor_id: default!(Option<pgrx::Uuid>, "NULL")) -> pgrx::JsonB {
    crate::error::require_writable("auth.webauthn_options()");
    let (user_id, _) = crate::self_service::me("auth.webauthn_options");
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
    crate::error::require_writable("auth.mfa_verify_webauthn()");
    let challenge_id = required(challenge_id, "challenge_id");
    let credential = required(credential, "credential");
    crate::attempt_limits::require_durable_or_autocommit("auth.mfa_verify_webauthn");
    let (user_id, session) = crate::self_service::me("auth.mfa_verify_webauthn");
    verify_credential(challenge_id, &credential, None, session, Some(user_id))
}
