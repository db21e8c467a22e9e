//! Parsing a browser's `PublicKeyCredential.toJSON()`: its structure is checked, with every
//! field bounded, before anything is verified.

use ciborium::value::Value;
use serde_json::{Map, Value as Json};

use crate::webauthn::authdata::{self, AuthData};
use crate::webauthn::cose;
use crate::webauthn::{b64url_decode, limits, WebauthnError};

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
