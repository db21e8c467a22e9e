//! Factor kinds: one module per kind, each a [`FactorKind`]. A kind says how a challenge of it
//! is issued (what, if anything, is sent and stored), how a response is parsed and checked
//! against the locked verification row, which audit event a verification of it is, and how
//! a success or a failure is written. The pipeline that drives them is src/verification/.
//! Adding a factor kind is a label in `mfa_auth_core::factor_type`, one module here and one
//! arm in [`of`].

pub mod phone;
pub mod record;
pub mod recovery_code;
pub mod row;
pub mod totp;
pub mod webauthn;

use pgrx::datum::DatumWithOid;
use pgrx::spi::SpiClient;

use crate::factor_kinds::row::Locked;
use crate::pg::error::{raise, MfaError};
pub use crate::pg::types::factor_type as parse_type;
pub use mfa_auth_core::audit::Event;
pub use mfa_auth_core::factor_type::FactorType;

/// Which verification function was called: one taking a code, verify_webauthn, or
/// verify_recovery_code. A kind answers to one of them.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Via {
    Code,
    Webauthn,
    RecoveryCode,
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

/// The factor a challenge is issued for.
pub struct FactorRow {
    pub factor_id: pgrx::Uuid,
    pub user_id: pgrx::Uuid,
    pub verified: bool,
    pub friendly_name: Option<String>,
    pub credential: Option<String>,
}

/// A response to check: a code, or a parsed WebAuthn credential.
pub enum Response<'a> {
    Code(&'a str),
    Webauthn(Box<webauthn::Parsed>),
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

/// One kind of factor, as the verification pipeline and challenge creation see it.
pub trait FactorKind: Sync {
    /// The verification function that answers this kind.
    fn via(&self) -> Via {
        Via::Code
    }

    /// The audit event of a verification of `row`.
    fn audit_event(&self, _row: &Locked) -> Event {
        Event::Verification
    }

    /// Issues a challenge of factor `f`; `resend_too_soon` says whether the factor's last
    /// challenge is younger than mfa_auth.phone_resend_interval.
    fn issue(&self, client: &mut SpiClient<'_>, f: &FactorRow, resend_too_soon: bool) -> Issued;

    /// Parses `input`: raises on malformed input (before anything is counted). A code is
    /// taken as it is (a wrong code is a wrong code, not an error).
    fn parse<'a>(&self, _row: &Locked, input: &'a str) -> Response<'a> {
        Response::Code(input)
    }

    /// Checks `response` against the locked row (the attempt is already counted).
    fn check(&self, client: &mut SpiClient<'_>, row: &Locked, response: &Response<'_>) -> Checked;

    /// Writes a success: runs this kind's statement of
    /// [`success_statement!`](crate::factor_kinds::record), with the pipeline's arguments.
    fn succeed(&self, client: &mut SpiClient<'_>, args: &[DatumWithOid<'_>]);

    /// Writes a failure: runs this kind's statement of
    /// [`failure_statement!`](crate::factor_kinds::record), with the pipeline's arguments.
    fn fail(&self, client: &mut SpiClient<'_>, args: &[DatumWithOid<'_>]);
}

/// The kind of factor type `t`.
pub fn of(t: FactorType) -> &'static dyn FactorKind {
    match t {
        FactorType::Totp => &totp::Totp,
        FactorType::Phone => &phone::Phone,
        FactorType::Webauthn => &webauthn::Webauthn,
        FactorType::RecoveryCode => &recovery_code::RecoveryCodes,
    }
}

/// The response of a code kind: anything else is a bug of the pipeline.
pub fn code<'a>(response: &Response<'a>) -> &'a str {
    match response {
        Response::Code(code) => code,
        Response::Webauthn(_) => raise(MfaError::Internal("response parsed for another factor type".into())),
    }
}
