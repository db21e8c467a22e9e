//! The WebAuthn core: pure Rust, no pgrx.
//!
//! What a relying party does with a browser's `PublicKeyCredential.toJSON()` (W3C Web
//! Authentication Level 3, §7.1 registration and §7.2 authentication), split in two steps:
//!
//! 1. [`ceremony::parse_registration`] / [`ceremony::parse_assertion`]: the structure.
//!    base64url, JSON, CBOR, authenticator data, COSE key. Every size is capped before
//!    anything is decoded. A failure here is [`WebauthnError`]: the input is not a
//!    credential at all (the SQL layer raises 22023 naming the field).
//! 2. [`ceremony::verify_registration`] / [`ceremony::verify_assertion`]: the checks.
//!    Type, challenge, origin, rpIdHash, flags, signature, sign count. A failure here is a
//!    [`Rejection`]: a well-formed credential that does not prove what it must (the SQL
//!    layer answers `false` and counts a failed attempt).
//!
//! The options handed to `navigator.credentials.create()` / `get()` are built by
//! [`ceremony::creation_options`] and [`ceremony::request_options`].

pub mod authdata;
pub mod ceremony;
pub mod cose;

#[cfg(test)]
mod tests;

use std::fmt;

use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::Engine;

/// Size caps, in bytes of the decoded value unless said otherwise.
pub mod limits {
    /// The whole credential JSON (binary jsonb size, checked before it is converted).
    pub const CREDENTIAL_JSON: usize = 64 * 1024;
    /// A credential id (W3C L3: at most 1023 bytes).
    pub const CREDENTIAL_ID: usize = 1023;
    pub const CLIENT_DATA_JSON: usize = 8 * 1024;
    pub const ATTESTATION_OBJECT: usize = 32 * 1024;
    pub const AUTHENTICATOR_DATA: usize = 8 * 1024;
    /// An RSA-8192 signature is 1024 bytes; DER ECDSA and Ed25519 are far below.
    pub const SIGNATURE: usize = 1024;
    /// W3C L3: a user handle is at most 64 bytes.
    pub const USER_HANDLE: usize = 64;
    /// Transports listed by the browser (each a short token).
    pub const TRANSPORTS: usize = 16;
    pub const TRANSPORT: usize = 32;
    /// CBOR nesting (ciborium's own recursion limit is higher).
    pub const CBOR_DEPTH: usize = 16;
}

/// The input is not a credential: malformed JSON, base64url, CBOR or binary structure, a
/// wrong JSON type, or an oversized field. `field` names it as the browser's JSON does
/// (`response.clientDataJSON`, `response.attestationObject.authData`, ...).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WebauthnError {
    Invalid { field: &'static str, reason: String },
    TooLong { field: &'static str, max: usize },
}

impl WebauthnError {
    pub fn invalid(field: &'static str, reason: impl Into<String>) -> Self {
        WebauthnError::Invalid { field, reason: reason.into() }
    }

    pub fn field(&self) -> &'static str {
        match self {
            WebauthnError::Invalid { field, .. } | WebauthnError::TooLong { field, .. } => field,
        }
    }
}

impl fmt::Display for WebauthnError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WebauthnError::Invalid { field, reason } => write!(f, "invalid credential field \"{field}\": {reason}"),
            WebauthnError::TooLong { field, max } => {
                write!(f, "credential field \"{field}\" is too long: at most {max} bytes")
            }
        }
    }
}

impl std::error::Error for WebauthnError {}

/// Why a well-formed credential was not accepted (W3C L3 §7.1 / §7.2 step by step).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rejection {
    CredentialType,
    ClientDataType {
        expected: &'static str,
    },
    Challenge,
    Origin(String),
    CrossOrigin,
    RpIdHash,
    UserNotPresent,
    UserNotVerified,
    /// BS set without BE, or BE differs from the registered credential's.
    BackupFlags,
    NoAttestedCredential,
    /// The credential's algorithm is not one of ES256, EdDSA, RS256.
    Algorithm(i64),
    AttestationFormat(String),
    AttestationStatement(&'static str),
    RawIdMismatch,
    /// Not the credential of this factor (allowCredentials).
    UnknownCredential,
    UserHandle,
    Signature,
    /// The signature counter did not increase (a cloned authenticator, or a replay).
    SignCount {
        stored: u32,
        received: u32,
    },
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Rejection::CredentialType => write!(f, "credential type is not \"public-key\""),
            Rejection::ClientDataType { expected } => write!(f, "clientDataJSON.type is not \"{expected}\""),
            Rejection::Challenge => write!(f, "clientDataJSON.challenge is not this challenge's"),
            Rejection::Origin(o) => write!(f, "origin {o:?} is not in mfa_auth.webauthn_origins"),
            Rejection::CrossOrigin => write!(f, "cross-origin (iframe) ceremonies are refused"),
            Rejection::RpIdHash => write!(f, "rpIdHash is not SHA-256 of the relying party id"),
            Rejection::UserNotPresent => write!(f, "user presence (UP) flag not set"),
            Rejection::UserNotVerified => write!(f, "user verification (UV) required and not performed"),
            Rejection::BackupFlags => write!(f, "backup flags (BE/BS) inconsistent"),
            Rejection::NoAttestedCredential => write!(f, "no attested credential data in authenticator data"),
            Rejection::Algorithm(a) => {
                write!(f, "credential algorithm {a} is not ES256 (-7), EdDSA (-8) or RS256 (-257)")
            }
            Rejection::AttestationFormat(fmt_) => write!(f, "attestation format {fmt_:?} is not supported"),
            Rejection::AttestationStatement(why) => write!(f, "attestation statement: {why}"),
            Rejection::RawIdMismatch => write!(f, "rawId is not the credential id in authenticator data"),
            Rejection::UnknownCredential => write!(f, "credential is not this factor's"),
            Rejection::UserHandle => write!(f, "userHandle is not this user's"),
            Rejection::Signature => write!(f, "signature does not verify"),
            Rejection::SignCount { stored, received } => {
                write!(f, "signature counter did not increase (stored {stored}, received {received})")
            }
        }
    }
}

const B64URL: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::URL_SAFE,
    GeneralPurposeConfig::new().with_encode_padding(false).with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// base64url without padding (what `toJSON()` produces and the options carry).
pub fn b64url(bytes: &[u8]) -> String {
    B64URL.encode(bytes)
}

/// Decodes base64url (padding optional), refusing more than `max` decoded bytes before decoding.
pub fn b64url_decode(field: &'static str, text: &str, max: usize) -> Result<Vec<u8>, WebauthnError> {
    if text.len() > max.div_ceil(3) * 4 + 2 {
        return Err(WebauthnError::TooLong { field, max });
    }
    let bytes = B64URL.decode(text).map_err(|e| WebauthnError::invalid(field, format!("not base64url ({e})")))?;
    if bytes.len() > max {
        return Err(WebauthnError::TooLong { field, max });
    }
    Ok(bytes)
}
