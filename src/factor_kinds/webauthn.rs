//! WebAuthn factors (security keys, passkeys). A challenge of an unverified factor is a
//! registration (`navigator.credentials.create()` options); of a verified one, an
//! authentication (`get()` options, this factor's credential only). What verification needs
//! is kept in the challenge's `web_authn_session_data`; the registered credential in the
//! factor's `web_authn_credential`. The checks themselves are the pure core's
//! ([`crate::webauthn`]); this module maps settings, rows and errors.

use pgrx::datum::DatumWithOid;
use pgrx::prelude::*;
use pgrx::spi::SpiClient;

use super::{Checked, FactorKind, FactorRow, Issued, Response};
use crate::factor_kinds::record::{challenge_success, factor_failure};
use crate::factor_kinds::row::Locked;
use crate::otp::secret::random_bytes;
use crate::pg::error::{raise, MfaError, OrRaise};
use crate::pg::spi::{run, Stmt};
use crate::relying_party::config;
use crate::settings;
use crate::webauthn::ceremony::{self, Assertion, Ceremony, Registration, RelyingParty, SessionData, StoredCredential};
use crate::webauthn::{b64url, cose::PublicKey};

/// Bytes of a challenge (W3C L3 asks for at least 16).
pub const CHALLENGE_BYTES: usize = 32;

/// The user's other registered credentials (excluded from a new registration).
const OTHER_CREDENTIALS: Stmt = Stmt {
    sql: "SELECT web_authn_credential::text FROM auth.mfa_factors
           WHERE user_id = $1 AND factor_type = 'webauthn' AND id <> $2 AND web_authn_credential IS NOT NULL",
    args: &[pg_sys::UUIDOID, pg_sys::UUIDOID],
};

/// A stored credential; a row this extension wrote that does not parse is a bug (XX000).
pub fn stored(text: &str) -> StoredCredential {
    serde_json::from_str(text).unwrap_or_else(|e| raise(MfaError::Internal(format!("stored WebAuthn credential: {e}"))))
}

/// A new challenge: (session data to store, as JSON text; options to return).
fn issue(client: &mut SpiClient<'_>, f: &FactorRow) -> (String, serde_json::Value) {
    let cfg = config();
    let mut challenge = [0u8; CHALLENGE_BYTES];
    random_bytes(&mut challenge).or_raise();
    let user_handle = *f.user_id.as_bytes();
    let timeout_ms = u64::try_from(settings::challenge_expiry()).unwrap_or(300) * 1000;
    let (ceremony, allowed, options) = if f.verified {
        let Some(cred) = f.credential.as_deref() else {
            raise(MfaError::Internal("a verified WebAuthn factor without a credential".into()))
        };
        let cred = stored(cred);
        let options = ceremony::request_options(&cfg.rp_id, &challenge, &cred, cfg.uv, timeout_ms);
        (
            Ceremony::Request,
            vec![cred.id],
            serde_json::json!({"type": "request", "credential_options": {"publicKey": options}}),
        )
    } else {
        let others = run(client, &OTHER_CREDENTIALS, &[f.user_id.into(), f.factor_id.into()]);
        let exclude: Vec<StoredCredential> =
            others.map(|r| stored(&r.get::<String>(1).or_raise().unwrap_or_default())).collect();
        let rp = RelyingParty { id: &cfg.rp_id, name: &cfg.rp_name, origins: &cfg.origins };
        let user = f.user_id.to_string();
        let display = f.friendly_name.as_deref().filter(|n| !n.trim().is_empty()).unwrap_or(&user);
        let options =
            ceremony::creation_options(&rp, &challenge, &user_handle, &user, display, &exclude, cfg.uv, timeout_ms);
        (Ceremony::Create, vec![], serde_json::json!({"type": "create", "credential_options": {"publicKey": options}}))
    };
    let session = SessionData {
        challenge: b64url(&challenge),
        rp_id: cfg.rp_id,
        user_id: b64url(&user_handle),
        allowed_credentials: allowed,
        user_verification: cfg.uv.as_str().to_owned(),
        // Set by the INSERT from the challenge's own created_at.
        expires: String::new(),
        ceremony,
    };
    (serde_json::to_string(&session).expect("serializable"), options)
}

/// A WebAuthn response, parsed (its structure is checked before the attempt is counted).
pub enum Parsed {
    Registration(SessionData, Box<Registration>),
    Assertion(SessionData, Box<(Assertion, StoredCredential, PublicKey)>),
}

/// Parses `credential` (the browser's JSON) for the challenge in `row`. Malformed input
/// raises 22023 naming the field; a challenge whose session data was consumed by a failed
/// attempt raises 55000.
fn parse(row: &Locked, credential: &str) -> Parsed {
    let Some(session) = row.web_authn_session_data.as_deref() else { raise(MfaError::WebauthnChallengeUsed) };
    let session: SessionData = serde_json::from_str(session)
        .unwrap_or_else(|e| raise(MfaError::Internal(format!("stored WebAuthn session data: {e}"))));
    let json: serde_json::Value = serde_json::from_str(credential)
        .unwrap_or_else(|e| raise(MfaError::invalid("credential", format!("not JSON ({e})"))));
    match session.ceremony {
        Ceremony::Create => {
            if row.factor_verified {
                raise(MfaError::WebauthnChallengeUsed);
            }
            let reg = ceremony::parse_registration(&json).or_raise();
            Parsed::Registration(session, Box::new(reg))
        }
        Ceremony::Request => {
            let Some(cred) = row.web_authn_credential.as_deref() else {
                raise(MfaError::Internal("a WebAuthn authentication challenge of a factor without a credential".into()))
            };
            let cred = stored(cred);
            let key = cred.key().unwrap_or_else(|e| raise(MfaError::Internal(format!("stored WebAuthn key: {e}"))));
            let a = ceremony::parse_assertion(&json).or_raise();
            Parsed::Assertion(session, Box::new((a, cred, key)))
        }
    }
}

/// The checks. A rejection is `false` (counted by the caller) and is logged at DEBUG1 with
/// its reason (`SET client_min_messages = debug1` shows it).
fn check(parsed: &Parsed) -> Checked {
    let origins = config().origins;
    let outcome = match parsed {
        Parsed::Registration(session, reg) => ceremony::verify_registration(reg, session, &origins),
        Parsed::Assertion(session, a) => ceremony::verify_assertion(&a.0, session, &a.1, &a.2, &origins),
    };
    match outcome {
        Ok(cred) => Checked {
            ok: true,
            credential: Some(serde_json::to_string(&cred).expect("serializable")),
            ..Checked::wrong()
        },
        Err(why) => {
            pgrx::debug1!("mfa_auth: WebAuthn response rejected: {why}");
            Checked::wrong()
        }
    }
}

/// Success: the credential with its new sign count (`$8`).
const SUCCEED: Stmt = challenge_success!(
    "",
    ", web_authn_credential = COALESCE($8::jsonb, web_authn_credential),
       web_authn_aaguid = COALESCE(($8::jsonb ->> 'aaguid')::uuid, web_authn_aaguid)"
);
/// Failure: the challenge (`$6`) is used up as well: its session data goes, so it cannot be
/// answered again (a new one must be created). A statement of its own: a part switched off by
/// a parameter (`WHERE id = $6 AND $7`) re-planned every failure.
const FAIL: Stmt = factor_failure!(
    "WITH used_up AS (
              UPDATE auth.mfa_challenges SET web_authn_session_data = NULL WHERE id = $6
          )
          "
);

pub struct Webauthn;

impl FactorKind for Webauthn {
    fn via(&self) -> super::Via {
        super::Via::Webauthn
    }

    /// A registration (an unverified factor) or an assertion (a verified one).
    fn audit_event(&self, row: &Locked) -> super::Event {
        if row.factor_verified {
            super::Event::WebauthnAssertion
        } else {
            super::Event::WebauthnRegistration
        }
    }

    fn issue(&self, client: &mut SpiClient<'_>, f: &FactorRow, _: bool) -> Issued {
        let (session_data, options) = issue(client, f);
        Issued { session_data: Some(session_data), webauthn: Some(options), ..Issued::default() }
    }

    fn parse<'a>(&self, row: &Locked, input: &'a str) -> Response<'a> {
        Response::Webauthn(Box::new(parse(row, input)))
    }

    fn check(&self, _: &mut SpiClient<'_>, _: &Locked, response: &Response<'_>) -> Checked {
        match response {
            Response::Webauthn(parsed) => check(parsed),
            Response::Code(_) => raise(MfaError::Internal("response parsed for another factor type".into())),
        }
    }

    fn succeed(&self, client: &mut SpiClient<'_>, args: &[DatumWithOid<'_>]) {
        run(client, &SUCCEED, args);
    }

    fn fail(&self, client: &mut SpiClient<'_>, args: &[DatumWithOid<'_>]) {
        run(client, &FAIL, args);
    }
}
