//! COSE public keys (RFC 9052/9053, RFC 8230) as authenticators encode them in CBOR, and
//! the three signature algorithms mfa_auth accepts: ES256 (-7), EdDSA/Ed25519 (-8) and
//! RS256 (-257).

use ciborium::value::{Integer, Value};

use super::{limits, WebauthnError};

pub const ES256: i64 = -7;
pub const EDDSA: i64 = -8;
pub const RS256: i64 = -257;
/// In order of preference, as the creation options list them.
pub const ALGORITHMS: [i64; 3] = [ES256, EDDSA, RS256];

/// RSA moduli accepted, in bits.
const RSA_MIN_BITS: usize = 2048;
const RSA_MAX_BITS: usize = 8192;
/// The largest RSA public exponent accepted (2^33 - 1: the limit of aws-lc-rs, ring and the
/// `rsa` crate alike; every authenticator uses 65537).
const RSA_MAX_EXPONENT: u64 = (1 << 33) - 1;

/// A credential public key, parsed and validated once, ready to verify signatures. ES256 and
/// RS256 through aws-lc-rs (AWS-LC's assembly-backed P-256 and RSA), Ed25519 through
/// ed25519-dalek, whose `verify_strict` refuses small-order keys and R values (AWS-LC's
/// Ed25519 checks S < L only).
#[derive(Debug, Clone)]
pub enum PublicKey {
    Es256(aws_lc_rs::signature::ParsedPublicKey),
    Ed25519(ed25519_dalek::VerifyingKey),
    Rs256(aws_lc_rs::signature::ParsedPublicKey),
}

impl PublicKey {
    pub fn algorithm(&self) -> i64 {
        match self {
            PublicKey::Es256(_) => ES256,
            PublicKey::Ed25519(_) => EDDSA,
            PublicKey::Rs256(_) => RS256,
        }
    }

    /// Whether `signature` signs `message` under this key: ES256 with an ASN.1 DER signature
    /// (either S half: ECDSA is malleable and WebAuthn does not ask for low S), Ed25519 with
    /// `verify_strict` (no small-order keys or R, canonical S), RS256 as RSASSA-PKCS1-v1_5
    /// with SHA-256. A malformed signature is simply not valid.
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        match self {
            PublicKey::Es256(key) | PublicKey::Rs256(key) => key.verify_sig(message, signature).is_ok(),
            PublicKey::Ed25519(key) => match ed25519_dalek::Signature::from_slice(signature) {
                Ok(sig) => key.verify_strict(message, &sig).is_ok(),
                Err(_) => false,
            },
        }
    }
}

/// `b` without its leading zero bytes (a COSE key may carry one in front of a modulus whose
/// top bit is set, as a DER INTEGER would; the libraries want the minimal encoding).
fn minimal(b: &[u8]) -> &[u8] {
    let zeros = b.iter().take_while(|x| **x == 0).count();
    &b[zeros..]
}

/// Reads one CBOR item from the front of `input`; returns it and the bytes it took.
pub fn read_cbor(field: &'static str, input: &[u8]) -> Result<(Value, usize), WebauthnError> {
    let mut rest = input;
    let value: Value = ciborium::de::from_reader_with_recursion_limit(&mut rest, limits::CBOR_DEPTH)
        .map_err(|e| WebauthnError::invalid(field, format!("not CBOR ({e})")))?;
    Ok((value, input.len() - rest.len()))
}

/// Looks an integer label up in a CBOR map.
pub fn map_get(map: &[(Value, Value)], label: i64) -> Option<&Value> {
    map.iter().find(|(k, _)| matches!(k, Value::Integer(i) if i128::from(*i) == i128::from(label))).map(|(_, v)| v)
}

fn int(field: &'static str, v: Option<&Value>, what: &str) -> Result<i64, WebauthnError> {
    match v {
        Some(Value::Integer(i)) => {
            i64::try_from(*i).map_err(|_| WebauthnError::invalid(field, format!("{what} out of range")))
        }
        Some(_) => Err(WebauthnError::invalid(field, format!("{what} is not an integer"))),
        None => Err(WebauthnError::invalid(field, format!("{what} is missing"))),
    }
}

fn bytes<'a>(field: &'static str, v: Option<&'a Value>, what: &str) -> Result<&'a [u8], WebauthnError> {
    match v {
        Some(Value::Bytes(b)) => Ok(b),
        Some(_) => Err(WebauthnError::invalid(field, format!("{what} is not a byte string"))),
        None => Err(WebauthnError::invalid(field, format!("{what} is missing"))),
    }
}

/// What parsing a COSE key can find: a key of a supported algorithm, or a well-formed key
/// of another algorithm (a rejection, not malformed input).
pub enum Parsed {
    Key(PublicKey),
    Unsupported(i64),
}

/// Parses a COSE_Key map. Structure errors (not a map, labels of the wrong type, a point
/// not on the curve, a key of the wrong size) are [`WebauthnError`]s naming `field`.
pub fn parse_key(field: &'static str, value: &Value) -> Result<Parsed, WebauthnError> {
    let Value::Map(map) = value else { return Err(WebauthnError::invalid(field, "COSE key is not a map")) };
    let kty = int(field, map_get(map, 1), "kty (1)")?;
    let alg = int(field, map_get(map, 3), "alg (3)")?;
    match (kty, alg) {
        (2, ES256) => {
            let crv = int(field, map_get(map, -1), "crv (-1)")?;
            if crv != 1 {
                return Err(WebauthnError::invalid(field, format!("ES256 key on curve {crv}, not P-256 (1)")));
            }
            let x = bytes(field, map_get(map, -2), "x (-2)")?;
            let y = bytes(field, map_get(map, -3), "y (-3)")?;
            if x.len() != 32 || y.len() != 32 {
                return Err(WebauthnError::invalid(field, "P-256 coordinates must be 32 bytes each"));
            }
            // SEC 1 uncompressed point; aws-lc-rs checks that it lies on P-256.
            let mut point = Vec::with_capacity(65);
            point.push(0x04);
            point.extend_from_slice(x);
            point.extend_from_slice(y);
            let key = aws_lc_rs::signature::ParsedPublicKey::new(&aws_lc_rs::signature::ECDSA_P256_SHA256_ASN1, point)
                .map_err(|_| WebauthnError::invalid(field, "ES256 key is not a point on P-256"))?;
            Ok(Parsed::Key(PublicKey::Es256(key)))
        }
        (1, EDDSA) => {
            let crv = int(field, map_get(map, -1), "crv (-1)")?;
            if crv != 6 {
                return Err(WebauthnError::invalid(field, format!("EdDSA key on curve {crv}, not Ed25519 (6)")));
            }
            let x = bytes(field, map_get(map, -2), "x (-2)")?;
            let x: [u8; 32] =
                x.try_into().map_err(|_| WebauthnError::invalid(field, "Ed25519 public key must be 32 bytes"))?;
            let key = ed25519_dalek::VerifyingKey::from_bytes(&x)
                .map_err(|_| WebauthnError::invalid(field, "Ed25519 public key is not a valid point"))?;
            Ok(Parsed::Key(PublicKey::Ed25519(key)))
        }
        (3, RS256) => {
            let n = bytes(field, map_get(map, -1), "n (-1)")?;
            let e = bytes(field, map_get(map, -2), "e (-2)")?;
            let (n, e) = (minimal(n), minimal(e));
            let bits = if n.is_empty() { 0 } else { 8 * n.len() - n[0].leading_zeros() as usize };
            if !(RSA_MIN_BITS..=RSA_MAX_BITS).contains(&bits) {
                return Err(WebauthnError::invalid(
                    field,
                    format!("RSA modulus of {bits} bits (accepted: {RSA_MIN_BITS} to {RSA_MAX_BITS})"),
                ));
            }
            if n[n.len() - 1] & 1 == 0 {
                return Err(WebauthnError::invalid(field, "RSA modulus is even"));
            }
            let exponent = (e.len() <= 8).then(|| e.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b)));
            match exponent {
                Some(x) if (3..=RSA_MAX_EXPONENT).contains(&x) && x & 1 == 1 => {}
                _ => {
                    return Err(WebauthnError::invalid(
                        field,
                        "RSA public exponent must be odd and between 3 and 2^33-1 (authenticators use 65537)",
                    ))
                }
            }
            let key = aws_lc_rs::signature::RsaPublicKeyComponents { n, e }
                .to_parsed_public_key(&aws_lc_rs::signature::RSA_PKCS1_2048_8192_SHA256)
                .map_err(|err| WebauthnError::invalid(field, format!("RSA key: {err}")))?;
            Ok(Parsed::Key(PublicKey::Rs256(key)))
        }
        (1..=3, a) if a != ES256 && a != EDDSA && a != RS256 => Ok(Parsed::Unsupported(a)),
        (kty, alg) => {
            if [1, 2, 3, 4].contains(&kty) {
                Err(WebauthnError::invalid(field, format!("COSE key type {kty} does not match algorithm {alg}")))
            } else {
                Ok(Parsed::Unsupported(alg))
            }
        }
    }
}

/// Parses the COSE key stored with a factor (its CBOR bytes).
pub fn parse_stored(field: &'static str, cbor: &[u8]) -> Result<PublicKey, WebauthnError> {
    let (value, used) = read_cbor(field, cbor)?;
    if used != cbor.len() {
        return Err(WebauthnError::invalid(field, "trailing bytes after the COSE key"));
    }
    match parse_key(field, &value)? {
        Parsed::Key(k) => Ok(k),
        Parsed::Unsupported(a) => Err(WebauthnError::invalid(field, format!("unsupported algorithm {a}"))),
    }
}

/// An integer as a CBOR value (for tests and builders).
pub fn cbor_int(i: i64) -> Value {
    Value::Integer(Integer::from(i))
}
