//! Factor types: one module per type, behind one enum. A type says how a challenge of it
//! is issued (what, if anything, is sent and stored), how a response is checked against the
//! locked verification row, and which authentication method (AMR) a success earns. Adding a
//! factor type is one new module here and one arm in each `match` below.

pub mod phone;
pub mod totp;
pub mod webauthn;

use pgrx::spi::SpiClient;

use crate::challenges::Locked;
use crate::error::{raise, MfaError};

/// `auth.factor_type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FactorType {
    Totp,
    Webauthn,
    Phone,
    /// A user's recovery codes (src/recovery_codes.rs): verified when created, no challenges.
    RecoveryCode,
}

impl FactorType {
    /// In the order of auth.factor_type's labels.
    pub const ALL: [FactorType; 4] =
        [FactorType::Totp, FactorType::Webauthn, FactorType::Phone, FactorType::RecoveryCode];

    /// The `auth.factor_type` label.
    pub fn sql_name(self) -> &'static str {
        match self {
            FactorType::Totp => "totp",
            FactorType::Phone => "phone",
            FactorType::Webauthn => "webauthn",
            FactorType::RecoveryCode => "recovery_code",
        }
    }

    pub fn parse(label: &str) -> FactorType {
        match Self::ALL.into_iter().find(|t| t.sql_name() == label) {
            Some(t) => t,
            None => raise(MfaError::UnsupportedFactor(label.to_owned())),
        }
    }

    /// The authentication method a verification of this type records (Supabase Auth's names;
    /// sql/amr.sql spells the same list).
    pub fn amr_method(self) -> &'static str {
        match self {
            FactorType::Totp => "totp",
            FactorType::Phone => "mfa/phone",
            FactorType::Webauthn => "mfa/webauthn",
            // supabase/auth#2728: the `recovery_code` factor type and its `mfa/recovery_code` AMR method.
            FactorType::RecoveryCode => "mfa/recovery_code",
        }
    }
}

/// What issuing a challenge produced: the code to hand to the caller (to send), what the
/// challenge row stores in `otp_code` and `web_authn_session_data`, and the WebAuthn
/// options to hand to the browser.
#[derive(Default)]
pub struct Issued {
    pub code: Option<String>,
    pub stored: Option<String>,
    pub session_data: Option<String>,
    pub webauthn: Option<serde_json::Value>,
}

/// The outcome of checking a response.
#[derive(Default)]
pub struct Checked {
    pub ok: bool,
    /// The TOTP time step the code matched (recorded so it is never accepted again).
    pub step: Option<i64>,
    /// The factor's secret re-sealed with the current key, when it should be stored again.
    pub resealed: Option<String>,
    /// WebAuthn: the credential to store (registered, or with its new sign count); its
    /// `aaguid` also fills `web_authn_aaguid`.
    pub credential: Option<String>,
    /// A TOTP code of a step at or before the last accepted one (RFC 6238 §5.2).
    pub replay: bool,
}

impl Checked {
    pub fn wrong() -> Checked {
        Checked::default()
    }
}

/// Issues a challenge of factor `f` of type `t`; `resend_too_soon` says whether the factor's
/// last challenge is younger than mfa_auth.phone_resend_interval.
pub fn issue(client: &mut SpiClient<'_>, t: FactorType, f: &webauthn::FactorRow, resend_too_soon: bool) -> Issued {
    match t {
        FactorType::Totp => Issued::default(),
        FactorType::Phone => phone::issue(resend_too_soon),
        FactorType::Webauthn => {
            let (session_data, options) = webauthn::issue(client, f);
            Issued { session_data: Some(session_data), webauthn: Some(options), ..Issued::default() }
        }
        FactorType::RecoveryCode => raise(MfaError::WrongVerifier(t.sql_name())),
    }
}

/// A response to check: a code, or a parsed WebAuthn credential.
pub enum Response<'a> {
    Code(&'a str),
    Webauthn(Box<webauthn::Parsed>),
}

/// Parses `input` for the row's factor type: raises on malformed input (before anything
/// is counted). A code is taken as it is (a wrong code is a wrong code, not an error).
pub fn parse<'a>(row: &Locked, input: &'a str) -> Response<'a> {
    match row.factor_type {
        FactorType::Totp | FactorType::Phone => Response::Code(input),
        FactorType::Webauthn => Response::Webauthn(Box::new(webauthn::parse(row, input))),
        FactorType::RecoveryCode => raise(MfaError::WrongVerifier(row.factor_type.sql_name())),
    }
}

/// Checks `response` against the locked verification row.
pub fn check(row: &Locked, response: &Response<'_>) -> Checked {
    match (row.factor_type, response) {
        (FactorType::Totp, Response::Code(code)) => totp::check(row, code),
        (FactorType::Phone, Response::Code(code)) => phone::check(row, code),
        (FactorType::Webauthn, Response::Webauthn(parsed)) => webauthn::check(parsed),
        _ => raise(MfaError::Internal("response parsed for another factor type".into())),
    }
}
