//! The two ceremonies: the options a browser is given, the structure of what it answers,
//! and the relying party's checks (W3C Web Authentication Level 3, §7.1 and §7.2).

use serde::{Deserialize, Serialize};
use serde_json::{json, Value as Json};

use super::cose::{self, PublicKey};
use super::{b64url, b64url_decode, limits, WebauthnError};

/// `userVerification` of the options, and whether the checks require the UV flag.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UserVerification {
    Required,
    Preferred,
    Discouraged,
}

impl UserVerification {
    pub fn parse(s: &str) -> Option<UserVerification> {
        match s {
            "required" => Some(UserVerification::Required),
            "preferred" => Some(UserVerification::Preferred),
            "discouraged" => Some(UserVerification::Discouraged),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            UserVerification::Required => "required",
            UserVerification::Preferred => "preferred",
            UserVerification::Discouraged => "discouraged",
        }
    }
}

/// Which ceremony a challenge is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Ceremony {
    /// Registration: `navigator.credentials.create()`.
    Create,
    /// Authentication: `navigator.credentials.get()`.
    Request,
}

/// What a challenge keeps for its verification (`auth.mfa_challenges.web_authn_session_data`),
/// under go-webauthn's SessionData names. Binary values are base64url.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct SessionData {
    pub challenge: String,
    #[serde(rename = "rpId")]
    pub rp_id: String,
    /// The user handle (the user's UUID, 16 bytes).
    pub user_id: String,
    /// Authentication: the credential ids the assertion may come from.
    #[serde(default)]
    pub allowed_credentials: Vec<String>,
    #[serde(rename = "userVerification")]
    pub user_verification: String,
    /// RFC 3339; informative (the challenge's created_at and mfa_auth.challenge_expiry decide).
    pub expires: String,
    #[serde(rename = "type")]
    pub ceremony: Ceremony,
}

impl SessionData {
    fn uv_required(&self) -> bool {
        self.user_verification == UserVerification::Required.as_str()
    }
}

/// The credential a factor holds (`auth.mfa_factors.web_authn_credential`).
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct StoredCredential {
    /// Credential id, base64url.
    pub id: String,
    /// The COSE public key as the authenticator encoded it, base64url.
    pub public_key: String,
    pub algorithm: i64,
    pub sign_count: u32,
    pub backup_eligible: bool,
    pub backup_state: bool,
    /// Whether user verification (UV) was seen, at registration or since.
    pub user_verified: bool,
    pub aaguid: String,
    pub attestation_format: String,
    #[serde(default)]
    pub transports: Vec<String>,
}

impl StoredCredential {
    /// The stored COSE key, parsed.
    pub fn key(&self) -> Result<PublicKey, WebauthnError> {
        let cbor = b64url_decode("web_authn_credential.public_key", &self.public_key, limits::AUTHENTICATOR_DATA)?;
        cose::parse_stored("web_authn_credential.public_key", &cbor)
    }

    fn descriptor(&self) -> Json {
        let mut d = json!({"type": "public-key", "id": self.id});
        if !self.transports.is_empty() {
            d["transports"] = json!(self.transports);
        }
        d
    }
}

/// The relying party, as the settings configure it.
pub struct RelyingParty<'a> {
    pub id: &'a str,
    pub name: &'a str,
    pub origins: &'a [String],
}

/// `PublicKeyCredentialCreationOptionsJSON` for registering a credential of user
/// `user_handle`; `exclude` are the user's other credentials (an authenticator that holds
/// one of them is not registered twice).
#[allow(clippy::too_many_arguments)]
pub fn creation_options(
    rp: &RelyingParty<'_>,
    challenge: &[u8],
    user_handle: &[u8],
    user_name: &str,
    display_name: &str,
    exclude: &[StoredCredential],
    uv: UserVerification,
    timeout_ms: u64,
) -> Json {
    json!({
        "rp": {"id": rp.id, "name": rp.name},
        "user": {"id": b64url(user_handle), "name": user_name, "displayName": display_name},
        "challenge": b64url(challenge),
        "pubKeyCredParams": cose::ALGORITHMS.iter().map(|a| json!({"type": "public-key", "alg": a})).collect::<Vec<_>>(),
        "timeout": timeout_ms,
        "excludeCredentials": exclude.iter().map(StoredCredential::descriptor).collect::<Vec<_>>(),
        "authenticatorSelection": {
            "residentKey": "discouraged",
            "requireResidentKey": false,
            "userVerification": uv.as_str(),
        },
        "attestation": "none",
    })
}

/// `PublicKeyCredentialRequestOptionsJSON` for an assertion by `credential` only.
pub fn request_options(
    rp_id: &str,
    challenge: &[u8],
    credential: &StoredCredential,
    uv: UserVerification,
    timeout_ms: u64,
) -> Json {
    json!({
        "challenge": b64url(challenge),
        "timeout": timeout_ms,
        "rpId": rp_id,
        "allowCredentials": [credential.descriptor()],
        "userVerification": uv.as_str(),
    })
}

mod parse;
mod verify;
pub use parse::*;
pub use verify::*;
