//! mfa_auth's core: pure Rust, no pgrx (this crate does not depend on it, so nothing here can
//! start to). The extension (the crate at the repository's top) is the shell that maps SQL to
//! it; the fuzz targets (`fuzz/`) and the micro-benchmarks (`bench/`) use it directly.
//!
//! - [`otp`]: HOTP/TOTP, base32, otpauth URIs, QR codes, secret sealing, attempt limits,
//!   recovery-code and phone-code hashing, and the audit trail's records and queue.
//! - [`webauthn`]: parsing and verifying WebAuthn registrations and assertions.

pub mod otp;
pub mod webauthn;
