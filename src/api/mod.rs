//! The SQL functions: only `#[pg_extern]`s (and the two C entry points of auth.aal() and
//! auth.mfa_satisfied()), one file per group a user sees. Each checks its arguments and makes
//! one call down into the domain modules. The Rust function names are the C symbols
//! (`<name>_wrapper`) that installed SQL definitions point at: keep them, including the `_v2`
//! ones whose older definitions a database on an older version still calls.

pub mod admin;
pub mod challenges;
pub mod factors;
pub mod otp;
pub mod recovery;
pub mod sessions;
pub mod test_helper;
pub mod webauthn;
