//! The one-time-password core: pure Rust, no pgrx.
//!
//! Everything here is deterministic given its inputs (except `secret::generate`,
//! which reads the OS CSPRNG) and returns `Result<_, OtpError>` instead of panicking,
//! so it can be unit-tested with `cargo test` and fuzzed. The SQL layer maps
//! [`OtpError`] to SQLSTATEs.

pub mod base32;
pub mod hotp;
pub mod qr;
pub mod secret;
pub mod sha1_lanes;
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
    /// An argument longer than any valid value of it can be (refused before anything is
    /// allocated for it).
    TooLong { arg: &'static str, max: usize },
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
            OtpError::TooLong { arg, max } => write!(f, "{arg} is too long: at most {max} bytes"),
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

/// Input caps: every function that takes caller text checks its length against one of these
/// before it allocates for it, so no argument can make the backend allocate without bound
/// (outside Postgres' memory accounting) on the way to an error.
pub mod limits {
    /// Base32 secret text (a 40 KiB key: far beyond any real one; HMAC hashes keys longer
    /// than a block anyway).
    pub const SECRET_TEXT: usize = 65_536;
    /// An otpauth URI to parse.
    pub const URI: usize = 65_536;
    /// The most a QR code can hold at mfa_auth's error-correction level (M): 5 596 digits
    /// (version 40); 3 391 alphanumeric characters or 2 331 bytes otherwise.
    pub const QR_DATA: usize = 5_596;
    /// One part of an otpauth label (issuer, account name): what fits in the largest QR code.
    pub const LABEL_PART: usize = 2_331;
    /// A factor's friendly name.
    pub const FRIENDLY_NAME: usize = 1_024;
    /// `request.jwt.claims` as mfa_auth parses it (longer: no identity).
    pub const JWT_CLAIMS: usize = 65_536;
}

/// `Err(TooLong)` when `s` is longer than `max` bytes.
pub fn check_len(arg: &'static str, s: &str, max: usize) -> Result<(), OtpError> {
    if s.len() > max {
        Err(OtpError::TooLong { arg, max })
    } else {
        Ok(())
    }
}

pub(crate) fn invalid(arg: &'static str, reason: impl Into<String>) -> OtpError {
    OtpError::InvalidParameter { arg, reason: reason.into() }
}
