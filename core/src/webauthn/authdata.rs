//! Authenticator data (W3C L3 §6.1): rpIdHash, flags, signature counter, then, when the
//! AT flag says so, the attested credential data (AAGUID, credential id, COSE key), and,
//! when ED says so, the extensions map. Nothing may follow.

use ciborium::value::Value;

use super::cose::{self, Parsed};
use super::{limits, WebauthnError};

pub const UP: u8 = 0x01;
pub const UV: u8 = 0x04;
pub const BE: u8 = 0x08;
pub const BS: u8 = 0x10;
pub const AT: u8 = 0x40;
pub const ED: u8 = 0x80;

/// The attested credential data of a registration.
pub struct AttestedCredential {
    pub aaguid: [u8; 16],
    pub credential_id: Vec<u8>,
    /// The COSE key exactly as the authenticator encoded it (stored with the factor).
    pub public_key_cbor: Vec<u8>,
    pub public_key: Parsed,
}

pub struct AuthData {
    pub rp_id_hash: [u8; 32],
    pub flags: u8,
    pub sign_count: u32,
    pub attested: Option<AttestedCredential>,
}

impl AuthData {
    pub fn flag(&self, f: u8) -> bool {
        self.flags & f != 0
    }
}

/// Parses authenticator data; `field` names where it came from in the credential JSON.
pub fn parse(field: &'static str, data: &[u8]) -> Result<AuthData, WebauthnError> {
    if data.len() < 37 {
        return Err(WebauthnError::invalid(field, format!("{} bytes, at least 37 expected", data.len())));
    }
    let rp_id_hash: [u8; 32] = data[..32].try_into().expect("32 bytes");
    let flags = data[32];
    let sign_count = u32::from_be_bytes(data[33..37].try_into().expect("4 bytes"));
    let mut rest = &data[37..];
    let attested = if flags & AT != 0 {
        if rest.len() < 18 {
            return Err(WebauthnError::invalid(field, "attested credential data truncated"));
        }
        let aaguid: [u8; 16] = rest[..16].try_into().expect("16 bytes");
        let id_len = usize::from(u16::from_be_bytes([rest[16], rest[17]]));
        rest = &rest[18..];
        if id_len > limits::CREDENTIAL_ID {
            return Err(WebauthnError::invalid(field, format!("credential id of {id_len} bytes (at most 1023)")));
        }
        if rest.len() < id_len {
            return Err(WebauthnError::invalid(field, "credential id truncated"));
        }
        let credential_id = rest[..id_len].to_vec();
        rest = &rest[id_len..];
        // The key is one CBOR item; extensions may follow it, so it is read, not decoded whole.
        let (key, used) = cose::read_cbor(field, rest)?;
        let public_key_cbor = rest[..used].to_vec();
        rest = &rest[used..];
        Some(AttestedCredential { aaguid, credential_id, public_key_cbor, public_key: cose::parse_key(field, &key)? })
    } else {
        None
    };
    if flags & ED != 0 {
        let (ext, used) = cose::read_cbor(field, rest)?;
        if !matches!(ext, Value::Map(_)) {
            return Err(WebauthnError::invalid(field, "extensions are not a CBOR map"));
        }
        rest = &rest[used..];
    }
    if !rest.is_empty() {
        return Err(WebauthnError::invalid(field, format!("{} unexpected bytes at the end", rest.len())));
    }
    Ok(AuthData { rp_id_hash, flags, sign_count, attested })
}
