//! The WebAuthn relying party as configured (mfa_auth.webauthn_rp_id, _rp_name, _origins,
//! _user_verification), checked when it is used: a setting that is missing or wrong raises
//! 55000 naming it.

use crate::pg::error::{raise, MfaError};
use crate::settings;
use mfa_auth_core::webauthn::ceremony::UserVerification;

/// The relying party as configured; raises 55000 naming the setting that is missing or wrong.
pub struct Config {
    pub rp_id: String,
    pub rp_name: String,
    pub origins: Vec<String>,
    pub uv: UserVerification,
}

fn bad(setting: &'static str, reason: impl Into<String>) -> ! {
    raise(MfaError::WebauthnSetting { setting, reason: reason.into() })
}

/// Whether `host` is `rp_id` or a subdomain of it (W3C L3 §5.1.3: the RP ID must be a
/// registrable suffix of the origin's effective domain).
fn within(host: &str, rp_id: &str) -> bool {
    host == rp_id || host.strip_suffix(rp_id).is_some_and(|rest| rest.ends_with('.'))
}

/// Checks one allowed origin: `https://host[:port]`, or `http://localhost[:port]`, exact
/// (no path, no trailing slash), with host within the rp id.
fn check_origin(origin: &str, rp_id: &str) {
    const S: &str = "mfa_auth.webauthn_origins";
    let (scheme, rest) = origin.split_once("://").unwrap_or_else(|| bad(S, format!("{origin:?} is not an origin")));
    if rest.is_empty() || rest.contains(['/', '?', '#', '@', ' ']) {
        bad(S, format!("{origin:?} is not an origin (scheme://host[:port], nothing after)"));
    }
    let host = match rest.rsplit_once(':') {
        Some((h, port)) if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) => h,
        Some(_) => bad(S, format!("{origin:?} has a bad port")),
        None => rest,
    };
    match scheme {
        "https" => {}
        "http" if host == "localhost" => {}
        _ => bad(S, format!("{origin:?}: only https origins (and http://localhost for development) are allowed")),
    }
    if !within(host, rp_id) {
        bad(S, format!("{origin:?} is not within mfa_auth.webauthn_rp_id {rp_id:?}"));
    }
}

pub fn config() -> Config {
    let Some(rp_id) = settings::webauthn_rp_id() else { bad("mfa_auth.webauthn_rp_id", "is not set") };
    if rp_id.contains(['/', ':', ' ']) || rp_id.starts_with('.') || rp_id.ends_with('.') {
        bad("mfa_auth.webauthn_rp_id", format!("{rp_id:?} is not a domain (e.g. example.com, or localhost)"));
    }
    let Some(origins) = settings::webauthn_origins() else { bad("mfa_auth.webauthn_origins", "is not set") };
    let origins: Vec<String> = origins.split(',').map(|o| o.trim().to_owned()).filter(|o| !o.is_empty()).collect();
    for o in &origins {
        check_origin(o, &rp_id);
    }
    let uv = settings::webauthn_user_verification();
    let rp_name = settings::webauthn_rp_name().unwrap_or_else(|| rp_id.clone());
    Config { rp_id, rp_name, origins, uv }
}
