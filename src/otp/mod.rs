//! The one-time-password core: pure Rust, no pgrx.
//!
//! Everything here is deterministic given its inputs (except `secret::generate`,
//! which reads the OS CSPRNG) and returns `Result<_, OtpError>` instead of panicking,
//! so it can be unit-tested with `cargo test` and fuzzed. The SQL layer maps
//! [`OtpError`] to SQLSTATEs.

pub mod attempts;
pub mod base32;
pub mod code_hash;
pub mod hotp;
pub mod phone;
pub mod qr;
pub mod sealed;
pub mod secret;
pub mod uri;

#[cfg(test)]
mod proptests;

pub use hotp::{Algorithm, OtpParams};

use std::fmt;

/// Everything that can go wrong in the core. Messages never contain a secret or a code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OtpError {
    /// An argument is out of its documented range; `arg` names it.
    InvalidParameter { arg: &'static str, reason: String },
    /// The base32 text could not be decoded.
    Base32(base32::Base32Error),
    /// An otpauth URI could not be parsed.
    InvalidUri(String),
    /// Data too long to fit in a QR code.
    QrTooLong,
    /// The operating system's random number generator failed.
    RandomSource(String),
}

impl fmt::Display for OtpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OtpError::InvalidParameter { arg, reason } => write!(f, "invalid {arg}: {reason}"),
            OtpError::Base32(e) => write!(f, "invalid secret: {e}"),
            OtpError::InvalidUri(why) => write!(f, "invalid otpauth URI: {why}"),
            OtpError::QrTooLong => write!(f, "data too long for a QR code"),
            OtpError::RandomSource(e) => write!(f, "the operating system's random number generator failed: {e}"),
        }
    }
}

impl std::error::Error for OtpError {}

impl From<base32::Base32Error> for OtpError {
    fn from(e: base32::Base32Error) -> Self {
        OtpError::Base32(e)
    }
}

pub(crate) fn invalid(arg: &'static str, reason: impl Into<String>) -> OtpError {
    OtpError::InvalidParameter { arg, reason: reason.into() }
}
