//! Factor types: one module per type, behind one enum. A type says how a challenge of it
//! is issued (what, if anything, is sent and stored), how a response is checked against the
//! locked verification row, and which authentication method (AMR) a success earns. Adding a
//! factor type is one new module here and one arm in each `match` below.

pub mod phone;
pub mod totp;

use crate::challenges::Locked;
use crate::error::{raise, MfaError};

/// `auth.factor_type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FactorType {
    Totp,
    Webauthn,
    Phone,
}

impl FactorType {
    /// In the order of auth.factor_type's labels.
    pub const ALL: [FactorType; 3] = [FactorType::Totp, FactorType::Webauthn, FactorType::Phone];

    /// The `auth.factor_type` label.
    pub fn sql_name(self) -> &'static str {
        match self {
            FactorType::Totp => "totp",
            FactorType::Phone => "phone",
            FactorType::Webauthn => "webauthn",
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
        }
    }
}

/// What issuing a challenge produced: the code to hand to the caller (to send), and what the
/// challenge row stores in `otp_code`.
#[derive(Default)]
pub struct Issued {
    pub code: Option<String>,
    pub stored: Option<String>,
}

/// The outcome of checking a response.
pub struct Checked {
    pub ok: bool,
    /// The TOTP time step the code matched (recorded so it is never accepted again).
    pub step: Option<i64>,
    /// The factor's secret re-sealed with the current key, when it should be stored again.
    pub resealed: Option<String>,
}

impl Checked {
    pub fn wrong() -> Checked {
        Checked { ok: false, step: None, resealed: None }
    }
}

/// Issues a challenge of a factor of type `t`; `resend_too_soon` says whether the factor's
/// last challenge is younger than mfa_auth.phone_resend_interval.
pub fn issue(t: FactorType, resend_too_soon: bool) -> Issued {
    match t {
        FactorType::Totp => Issued::default(),
        FactorType::Phone => phone::issue(resend_too_soon),
        FactorType::Webauthn => raise(MfaError::UnsupportedFactor(t.sql_name().to_owned())),
    }
}

/// Checks `response` against the locked verification row.
pub fn check(t: FactorType, row: &Locked, response: &str) -> Checked {
    match t {
        FactorType::Totp => totp::check(row, response),
        FactorType::Phone => phone::check(row, response),
        FactorType::Webauthn => raise(MfaError::UnsupportedFactor(t.sql_name().to_owned())),
    }
}
