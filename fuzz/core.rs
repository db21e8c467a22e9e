//! The extension's pure-Rust core, compiled on its own (it imports nothing from pgrx).
#[path = "../src/otp/mod.rs"]
pub mod otp;
#[path = "../src/webauthn/mod.rs"]
pub mod webauthn;
