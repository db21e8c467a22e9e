//! One error type for the SQL layer, each case with an explicit SQLSTATE.
//!
//! Every failure a caller can cause is raised through [`raise`], never as a Rust
//! panic (which would surface as XX000 with panic text). Messages name the
//! argument at fault and never contain a secret or a code. The README's error
//! table lists every case.

use pgrx::pg_sys::panic::ErrorReport;
use pgrx::prelude::*;

use crate::otp::OtpError;

#[derive(Debug)]
pub enum MfaError {
    /// 22004: an argument that must not be NULL was NULL.
    NullArgument(&'static str),
    /// 22023: an argument is outside its documented domain.
    InvalidParameter { arg: &'static str, reason: String },
    /// 22023 / 54000: from the OTP core.
    Otp(OtpError),
}

impl From<OtpError> for MfaError {
    fn from(e: OtpError) -> Self {
        MfaError::Otp(e)
    }
}

impl From<crate::otp::base32::Base32Error> for MfaError {
    fn from(e: crate::otp::base32::Base32Error) -> Self {
        MfaError::Otp(OtpError::Base32(e))
    }
}

impl MfaError {
    pub fn invalid(arg: &'static str, reason: impl Into<String>) -> Self {
        MfaError::InvalidParameter { arg, reason: reason.into() }
    }

    pub fn sqlstate(&self) -> PgSqlErrorCode {
        use PgSqlErrorCode::*;
        match self {
            MfaError::NullArgument(_) => ERRCODE_NULL_VALUE_NOT_ALLOWED,
            MfaError::InvalidParameter { .. } => ERRCODE_INVALID_PARAMETER_VALUE,
            MfaError::Otp(OtpError::QrTooLong) => ERRCODE_PROGRAM_LIMIT_EXCEEDED,
            MfaError::Otp(_) => ERRCODE_INVALID_PARAMETER_VALUE,
        }
    }

    pub fn message(&self) -> String {
        match self {
            MfaError::NullArgument(arg) => format!("{arg} must not be NULL"),
            MfaError::InvalidParameter { arg, reason } => format!("invalid {arg}: {reason}"),
            MfaError::Otp(e) => e.to_string(),
        }
    }

    fn hint(&self) -> Option<&'static str> {
        match self {
            MfaError::Otp(OtpError::Base32(_)) => {
                Some("Secrets are RFC 4648 base32: letters A-Z and digits 2-7; spaces, hyphens and '=' padding are ignored.")
            }
            MfaError::Otp(OtpError::QrTooLong) => Some("A QR code holds at most about 2300 bytes at this error-correction level."),
            _ => None,
        }
    }
}

/// Raises `e` as a Postgres ERROR with its SQLSTATE. Does not return.
pub fn raise(e: MfaError) -> ! {
    let mut report = ErrorReport::new(e.sqlstate(), e.message(), "mfa_auth");
    if let Some(h) = e.hint() {
        report = report.set_hint(h);
    }
    report.report(PgLogLevel::ERROR);
    unreachable!("ERROR does not return")
}

/// `result.or_raise()`: the value, or the error raised with its SQLSTATE.
pub trait OrRaise<T> {
    fn or_raise(self) -> T;
}

impl<T, E: Into<MfaError>> OrRaise<T> for Result<T, E> {
    #[inline]
    fn or_raise(self) -> T {
        match self {
            Ok(v) => v,
            Err(e) => raise(e.into()),
        }
    }
}

/// The value of a SQL argument that must not be NULL.
#[inline]
pub fn required<T>(value: Option<T>, arg: &'static str) -> T {
    match value {
        Some(v) => v,
        None => raise(MfaError::NullArgument(arg)),
    }
}
