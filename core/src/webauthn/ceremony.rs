//! The two ceremonies: the options a browser is given, the structure of what it answers,
//! and the relying party's checks (W3C Web Authentication Level 3, §7.1 and §7.2).

use ciborium::value::Value;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value as Json};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::authdata::{self, AuthData, BE, BS, UP, UV};
use super::cose::{self, Parsed, PublicKey};
use super::{b64url, b64url_decode, limits, Rejection, WebauthnError};

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

/// The collected client data, with the bytes it was parsed from (they are what is hashed).
pub struct ClientData {
    pub json: Vec<u8>,
    pub typ: String,
    pub challenge: String,
    pub origin: String,
    pub cross_origin: bool,
    pub top_origin: Option<String>,
}

/// A parsed registration response (`AuthenticatorAttestationResponse`).
pub struct Registration {
    pub cred_type: String,
    pub raw_id: Vec<u8>,
    pub client: ClientData,
    pub fmt: String,
    pub att_stmt: Vec<(Value, Value)>,
    pub auth_data_raw: Vec<u8>,
    pub auth_data: AuthData,
    pub transports: Vec<String>,
}

/// A parsed authentication response (`AuthenticatorAssertionResponse`).
pub struct Assertion {
    pub cred_type: String,
    pub raw_id: Vec<u8>,
    pub client: ClientData,
    pub auth_data_raw: Vec<u8>,
    pub auth_data: AuthData,
    pub signature: Vec<u8>,
    pub user_handle: Option<Vec<u8>>,
}

fn object<'a>(field: &'static str, v: Option<&'a Json>) -> Result<&'a Map<String, Json>, WebauthnError> {
    match v {
        Some(Json::Object(o)) => Ok(o),
        Some(_) => Err(WebauthnError::invalid(field, "is not a JSON object")),
        None => Err(WebauthnError::invalid(field, "is missing")),
    }
}

fn string<'a>(field: &'static str, v: Option<&'a Json>) -> Result<&'a str, WebauthnError> {
    match v {
        Some(Json::String(s)) => Ok(s),
        Some(_) => Err(WebauthnError::invalid(field, "is not a string")),
        None => Err(WebauthnError::invalid(field, "is missing")),
    }
}

fn b64_field(field: &'static str, v: Option<&Json>, max: usize) -> Result<Vec<u8>, WebauthnError> {
    b64url_decode(field, string(field, v)?, max)
}

/// What both responses share: `type`, the credential id, the `response` object and its client data.
type Envelope<'a> = (String, Vec<u8>, &'a Map<String, Json>, ClientData);

/// The top level shared by both responses: the credential id (`rawId`, which must equal
/// `id` when both are given), `type`, and the `response` object.
fn envelope(credential: &Json) -> Result<Envelope<'_>, WebauthnError> {
    let top = object("credential", Some(credential))?;
    let cred_type = string("type", top.get("type"))?.to_owned();
    let raw_id = match (top.get("rawId"), top.get("id")) {
        (Some(raw), id) => {
            let raw = b64_field("rawId", Some(raw), limits::CREDENTIAL_ID)?;
            if let Some(id) = id {
                if b64_field("id", Some(id), limits::CREDENTIAL_ID)? != raw {
                    return Err(WebauthnError::invalid("id", "differs from rawId"));
                }
            }
            raw
        }
        (None, id) => b64_field("id", id, limits::CREDENTIAL_ID)?,
    };
    let response = object("response", top.get("response"))?;
    let client =
        client_data(b64_field("response.clientDataJSON", response.get("clientDataJSON"), limits::CLIENT_DATA_JSON)?)?;
    Ok((cred_type, raw_id, response, client))
}

fn client_data(json: Vec<u8>) -> Result<ClientData, WebauthnError> {
    const F: &str = "response.clientDataJSON";
    let parsed: Json =
        serde_json::from_slice(&json).map_err(|e| WebauthnError::invalid(F, format!("not JSON ({e})")))?;
    let o = object(F, Some(&parsed))?;
    let s = |name: &str| match o.get(name) {
        Some(Json::String(v)) => Ok(v.clone()),
        Some(_) => Err(WebauthnError::invalid(F, format!("{name} is not a string"))),
        None => Err(WebauthnError::invalid(F, format!("{name} is missing"))),
    };
    let cross_origin = match o.get("crossOrigin") {
        None | Some(Json::Null) => false,
        Some(Json::Bool(b)) => *b,
        Some(_) => return Err(WebauthnError::invalid(F, "crossOrigin is not a boolean")),
    };
    let top_origin = match o.get("topOrigin") {
        None | Some(Json::Null) => None,
        Some(Json::String(t)) => Some(t.clone()),
        Some(_) => return Err(WebauthnError::invalid(F, "topOrigin is not a string")),
    };
    Ok(ClientData { typ: s("type")?, challenge: s("challenge")?, origin: s("origin")?, cross_origin, top_origin, json })
}

/// Parses a registration response (`PublicKeyCredential.toJSON()` after `create()`).
pub fn parse_registration(credential: &Json) -> Result<Registration, WebauthnError> {
    const F: &str = "response.attestationObject";
    let (cred_type, raw_id, response, client) = envelope(credential)?;
    let att = b64_field(F, response.get("attestationObject"), limits::ATTESTATION_OBJECT)?;
    let (value, used) = cose::read_cbor(F, &att)?;
    if used != att.len() {
        return Err(WebauthnError::invalid(F, "trailing bytes after the attestation object"));
    }
    let Value::Map(map) = value else { return Err(WebauthnError::invalid(F, "is not a CBOR map")) };
    let mut fmt = None;
    let mut att_stmt = None;
    let mut auth_data_raw = None;
    for (k, v) in map {
        match (k.as_text(), v) {
            (Some("fmt"), Value::Text(t)) => fmt = Some(t),
            (Some("attStmt"), Value::Map(m)) => att_stmt = Some(m),
            (Some("authData"), Value::Bytes(b)) => auth_data_raw = Some(b),
            (Some(name @ ("fmt" | "attStmt" | "authData")), _) => {
                return Err(WebauthnError::invalid(F, format!("{name} has the wrong CBOR type")))
            }
            _ => {}
        }
    }
    let fmt = fmt.ok_or_else(|| WebauthnError::invalid(F, "fmt is missing"))?;
    let att_stmt = att_stmt.ok_or_else(|| WebauthnError::invalid(F, "attStmt is missing"))?;
    let auth_data_raw = auth_data_raw.ok_or_else(|| WebauthnError::invalid(F, "authData is missing"))?;
    let auth_data = authdata::parse("response.attestationObject.authData", &auth_data_raw)?;
    let transports = match response.get("transports") {
        None | Some(Json::Null) => Vec::new(),
        Some(Json::Array(items)) => {
            if items.len() > limits::TRANSPORTS {
                return Err(WebauthnError::TooLong { field: "response.transports", max: limits::TRANSPORTS });
            }
            items
                .iter()
                .map(|t| match t {
                    Json::String(s) if s.len() <= limits::TRANSPORT => Ok(s.clone()),
                    Json::String(_) => {
                        Err(WebauthnError::TooLong { field: "response.transports", max: limits::TRANSPORT })
                    }
                    _ => Err(WebauthnError::invalid("response.transports", "holds a non-string")),
                })
                .collect::<Result<_, _>>()?
        }
        Some(_) => return Err(WebauthnError::invalid("response.transports", "is not an array")),
    };
    Ok(Registration { cred_type, raw_id, client, fmt, att_stmt, auth_data_raw, auth_data, transports })
}

/// Parses an authentication response (`PublicKeyCredential.toJSON()` after `get()`).
pub fn parse_assertion(credential: &Json) -> Result<Assertion, WebauthnError> {
    let (cred_type, raw_id, response, client) = envelope(credential)?;
    let auth_data_raw =
        b64_field("response.authenticatorData", response.get("authenticatorData"), limits::AUTHENTICATOR_DATA)?;
    let auth_data = authdata::parse("response.authenticatorData", &auth_data_raw)?;
    let signature = b64_field("response.signature", response.get("signature"), limits::SIGNATURE)?;
    let user_handle = match response.get("userHandle") {
        None | Some(Json::Null) => None,
        Some(v) => Some(b64_field("response.userHandle", Some(v), limits::USER_HANDLE)?).filter(|h| !h.is_empty()),
    };
    Ok(Assertion { cred_type, raw_id, client, auth_data_raw, auth_data, signature, user_handle })
}

fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

/// The client-data checks both ceremonies share (§7.1 steps 7-10, §7.2 steps 11-14).
fn check_client(
    client: &ClientData,
    expected_type: &'static str,
    session: &SessionData,
    origins: &[String],
) -> Result<(), Rejection> {
    if client.typ != expected_type {
        return Err(Rejection::ClientDataType { expected: expected_type });
    }
    let expected = b64url_decode("session.challenge", &session.challenge, 64).map_err(|_| Rejection::Challenge)?;
    match b64url_decode("clientDataJSON.challenge", &client.challenge, 64) {
        Ok(got) if ct_eq(&got, &expected) => {}
        _ => return Err(Rejection::Challenge),
    }
    if !origins.iter().any(|o| o == &client.origin) {
        return Err(Rejection::Origin(client.origin.chars().take(200).collect()));
    }
    if client.cross_origin || client.top_origin.is_some() {
        return Err(Rejection::CrossOrigin);
    }
    Ok(())
}

/// The authenticator-data checks both ceremonies share (rpIdHash, UP, UV, BS without BE).
fn check_auth_data(auth: &AuthData, session: &SessionData) -> Result<(), Rejection> {
    let expected: [u8; 32] = Sha256::digest(session.rp_id.as_bytes()).into();
    if !ct_eq(&auth.rp_id_hash, &expected) {
        return Err(Rejection::RpIdHash);
    }
    if !auth.flag(UP) {
        return Err(Rejection::UserNotPresent);
    }
    if session.uv_required() && !auth.flag(UV) {
        return Err(Rejection::UserNotVerified);
    }
    if auth.flag(BS) && !auth.flag(BE) {
        return Err(Rejection::BackupFlags);
    }
    Ok(())
}

fn signed_data(auth_data_raw: &[u8], client_json: &[u8]) -> Vec<u8> {
    let mut m = Vec::with_capacity(auth_data_raw.len() + 32);
    m.extend_from_slice(auth_data_raw);
    m.extend_from_slice(&Sha256::digest(client_json));
    m
}

/// Attestation statement formats whose statement carries a certificate chain. mfa_auth
/// trusts no attestation root, so for these the credential is accepted on the strength of
/// the ceremony alone, as with `none` (docs/webauthn.md).
const CHAIN_FORMATS: [&str; 5] = ["fido-u2f", "tpm", "android-key", "android-safetynet", "apple"];

fn check_attestation(reg: &Registration, key: &PublicKey) -> Result<(), Rejection> {
    let stmt = &reg.att_stmt;
    let get = |name: &str| stmt.iter().find(|(k, _)| k.as_text() == Some(name)).map(|(_, v)| v);
    match reg.fmt.as_str() {
        "none" if stmt.is_empty() => Ok(()),
        "none" => Err(Rejection::AttestationStatement("\"none\" attestation with a non-empty statement")),
        "packed" => {
            let alg = match get("alg") {
                Some(Value::Integer(i)) => i64::try_from(*i).map_err(|_| Rejection::AttestationStatement("alg"))?,
                _ => return Err(Rejection::AttestationStatement("packed: alg missing or not an integer")),
            };
            let Some(Value::Bytes(sig)) = get("sig") else {
                return Err(Rejection::AttestationStatement("packed: sig missing or not bytes"));
            };
            match get("x5c") {
                // Self attestation: signed by the credential key itself, with its algorithm.
                None => {
                    if alg != key.algorithm() {
                        return Err(Rejection::AttestationStatement("packed self attestation: alg is not the key's"));
                    }
                    if key.verify(&signed_data(&reg.auth_data_raw, &reg.client.json), sig) {
                        Ok(())
                    } else {
                        Err(Rejection::AttestationStatement("packed self attestation: signature does not verify"))
                    }
                }
                // A certificate chain: not trusted (no roots are configured), not checked.
                Some(Value::Array(certs))
                    if !certs.is_empty() && certs.iter().all(|c| matches!(c, Value::Bytes(_))) =>
                {
                    Ok(())
                }
                Some(_) => Err(Rejection::AttestationStatement("packed: x5c is not an array of certificates")),
            }
        }
        f if CHAIN_FORMATS.contains(&f) => Ok(()),
        other => Err(Rejection::AttestationFormat(other.chars().take(64).collect())),
    }
}

/// §7.1 Registering a new credential: every check, in the specification's order where it
/// matters. Returns the credential to store with the factor.
pub fn verify_registration(
    reg: &Registration,
    session: &SessionData,
    origins: &[String],
) -> Result<StoredCredential, Rejection> {
    if reg.cred_type != "public-key" {
        return Err(Rejection::CredentialType);
    }
    check_client(&reg.client, "webauthn.create", session, origins)?;
    check_auth_data(&reg.auth_data, session)?;
    let Some(att) = &reg.auth_data.attested else { return Err(Rejection::NoAttestedCredential) };
    let key = match &att.public_key {
        Parsed::Key(k) => k,
        Parsed::Unsupported(a) => return Err(Rejection::Algorithm(*a)),
    };
    if !ct_eq(&reg.raw_id, &att.credential_id) {
        return Err(Rejection::RawIdMismatch);
    }
    check_attestation(reg, key)?;
    Ok(StoredCredential {
        id: b64url(&att.credential_id),
        public_key: b64url(&att.public_key_cbor),
        algorithm: key.algorithm(),
        sign_count: reg.auth_data.sign_count,
        backup_eligible: reg.auth_data.flag(BE),
        backup_state: reg.auth_data.flag(BS),
        user_verified: reg.auth_data.flag(UV),
        aaguid: uuid::Uuid::from_bytes(att.aaguid).to_string(),
        attestation_format: reg.fmt.clone(),
        transports: reg.transports.clone(),
    })
}

/// §7.2 Verifying an authentication assertion against the factor's `stored` credential
/// (whose parsed key is `key`). Returns the credential as it is to be stored afterwards
/// (new sign count and backup state).
pub fn verify_assertion(
    a: &Assertion,
    session: &SessionData,
    stored: &StoredCredential,
    key: &PublicKey,
    origins: &[String],
) -> Result<StoredCredential, Rejection> {
    if a.cred_type != "public-key" {
        return Err(Rejection::CredentialType);
    }
    let id = b64url(&a.raw_id);
    if id != stored.id || !session.allowed_credentials.iter().any(|c| c == &id) {
        return Err(Rejection::UnknownCredential);
    }
    if let Some(handle) = &a.user_handle {
        let expected = b64url_decode("session.user_id", &session.user_id, limits::USER_HANDLE)
            .map_err(|_| Rejection::UserHandle)?;
        if !ct_eq(handle, &expected) {
            return Err(Rejection::UserHandle);
        }
    }
    check_client(&a.client, "webauthn.get", session, origins)?;
    check_auth_data(&a.auth_data, session)?;
    if a.auth_data.flag(BE) != stored.backup_eligible {
        return Err(Rejection::BackupFlags);
    }
    if !key.verify(&signed_data(&a.auth_data_raw, &a.client.json), &a.signature) {
        return Err(Rejection::Signature);
    }
    let received = a.auth_data.sign_count;
    if (stored.sign_count != 0 || received != 0) && received <= stored.sign_count {
        return Err(Rejection::SignCount { stored: stored.sign_count, received });
    }
    Ok(StoredCredential {
        sign_count: received,
        backup_state: a.auth_data.flag(BS),
        user_verified: stored.user_verified || a.auth_data.flag(UV),
        ..stored.clone()
    })
}
