//! The W3C WebAuthn L3 checks of a parsed registration or assertion against its session.

use ciborium::value::Value;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::*;
use crate::webauthn::authdata::{AuthData, BE, BS, UP, UV};
use crate::webauthn::cose::{Parsed, PublicKey};
use crate::webauthn::{b64url, b64url_decode, limits, Rejection};

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
