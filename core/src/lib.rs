//! mfa_auth's core: pure Rust, no pgrx (this crate does not depend on it, so nothing here can
//! start to). The extension (the crate at the repository's top) is the shell that maps SQL to
//! it; the fuzz targets (`fuzz/`) and the micro-benchmarks (`bench/`) use it directly.
//!
//! - [`otp`]: HOTP/TOTP (RFC 4226/6238), base32, otpauth URIs, QR codes, random secrets.
//! - [`webauthn`]: parsing and verifying WebAuthn registrations and assertions.
//! - [`factor_type`]: the factor types and the authentication method each earns.
//! - [`verification`]: what a verification decides (the refusal order, the outcome).
//! - [`attempts`]: the shared-memory table of failed attempts and locks.
//! - [`sealing`]: sealing secrets at rest under the master keys.
//! - [`code_hash`], [`phone`], [`recovery_code`]: phone codes and recovery codes, and their hashes.
//! - [`audit`]: the audit trail's events and the queue between backends and the writer.
//! - [`hooks`]: the policy hooks' events and what their answers decide.

pub mod attempts;
pub mod audit;
pub mod code_hash;
pub mod factor_type;
pub mod hooks;
pub mod otp;
pub mod phone;
pub mod recovery_code;
pub mod sealing;
pub mod verification;
pub mod webauthn;
