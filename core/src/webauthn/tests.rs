//! The core against the W3C Level 3 test vectors, and each rejection and parse error.

#[path = "w3c_vectors.rs"]
mod w3c_vectors;

use serde_json::{json, Value as Json};
use w3c_vectors::{Vector, VECTORS};

use super::ceremony::{self, Ceremony, SessionData, StoredCredential};
use super::cose::{self, PublicKey};
use super::{authdata, b64url, Rejection, WebauthnError};

fn hex(s: &str) -> Vec<u8> {
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex")).collect()
}

fn vector(name: &str) -> &'static Vector {
    VECTORS.iter().find(|v| v.name == name).expect("vector")
}

fn origins() -> Vec<String> {
    vec!["https://example.org".to_owned()]
}

fn session(challenge_hex: &str, ceremony: Ceremony, allowed: Vec<String>) -> SessionData {
    SessionData {
        challenge: b64url(&hex(challenge_hex)),
        rp_id: "example.org".into(),
        user_id: b64url(&[7u8; 16]),
        allowed_credentials: allowed,
        user_verification: "preferred".into(),
        expires: "2026-01-01T00:00:00Z".into(),
        ceremony,
    }
}

/// `PublicKeyCredential.toJSON()` of the vector's registration.
fn registration_json(v: &Vector) -> Json {
    let id = b64url(&hex(v.credential_id));
    json!({"id": id, "rawId": id, "type": "public-key",
           "response": {"clientDataJSON": b64url(&hex(v.reg_client_data)),
                        "attestationObject": b64url(&hex(v.attestation_object)),
                        "transports": ["usb"]},
           "clientExtensionResults": {}})
}

fn assertion_json(v: &Vector) -> Json {
    let id = b64url(&hex(v.credential_id));
    json!({"id": id, "rawId": id, "type": "public-key",
           "response": {"clientDataJSON": b64url(&hex(v.auth_client_data)),
                        "authenticatorData": b64url(&hex(v.authenticator_data)),
                        "signature": b64url(&hex(v.signature))}})
}

fn register(v: &Vector) -> Result<StoredCredential, Rejection> {
    let reg = ceremony::parse_registration(&registration_json(v)).expect("the vector parses");
    ceremony::verify_registration(&reg, &session(v.reg_challenge, Ceremony::Create, vec![]), &origins())
}

fn authenticate(v: &Vector, credential: &Json, stored: &StoredCredential) -> Result<StoredCredential, Rejection> {
    let a = ceremony::parse_assertion(credential).expect("the assertion parses");
    let s = session(v.auth_challenge, Ceremony::Request, vec![stored.id.clone()]);
    ceremony::verify_assertion(&a, &s, stored, &stored.key().expect("stored key"), &origins())
}

#[test]
fn every_accepted_vector_registers_then_authenticates() {
    for name in [
        "none.ES256",
        "packed-self.ES256",
        "none.ES256.long-credential-id",
        "packed.ES256",
        "packed.RS256",
        "packed.EdDSA",
    ] {
        let v = vector(name);
        let stored = register(v).unwrap_or_else(|r| panic!("{name}: registration rejected: {r}"));
        // The specification publishes the credential id and AAGUID beside each blob.
        assert_eq!(stored.id, b64url(&hex(v.credential_id)), "{name}");
        assert_eq!(stored.aaguid.replace('-', ""), v.aaguid, "{name}");
        assert_eq!(stored.transports, vec!["usb".to_owned()]);
        let expected_alg = match name {
            "packed.RS256" => cose::RS256,
            "packed.EdDSA" => cose::EDDSA,
            _ => cose::ES256,
        };
        assert_eq!(stored.algorithm, expected_alg, "{name}");
        let after =
            authenticate(v, &assertion_json(v), &stored).unwrap_or_else(|r| panic!("{name}: assertion rejected: {r}"));
        // Both counters zero (the vectors' authenticators keep none): accepted, still zero.
        assert_eq!(after.sign_count, 0, "{name}");
    }
}

#[test]
fn none_es256_is_the_published_credential() {
    let v = vector("none.ES256");
    assert_eq!(v.credential_id, "f91f391db4c9b2fde0ea70189cba3fb63f579ba6122b33ad94ff3ec330084be4");
    assert_eq!(v.aaguid, "8446ccb9ab1db374750b2367ff6f3a1f");
    let stored = register(v).expect("registers");
    assert_eq!(stored.attestation_format, "none");
    assert!(stored.backup_eligible && stored.backup_state && !stored.user_verified);
}

#[test]
fn long_credential_id_is_1023_bytes() {
    let stored = register(vector("none.ES256.long-credential-id")).expect("registers");
    assert_eq!(super::b64url_decode("id", &stored.id, 1023).expect("id").len(), 1023);
}

#[test]
fn cross_origin_is_refused_at_both_ceremonies() {
    let v = vector("none.ES256.crossOrigin");
    assert_eq!(register(v), Err(Rejection::CrossOrigin));
}

#[test]
fn packed_self_attestation_signature_is_checked() {
    let v = vector("packed-self.ES256");
    let mut att = hex(v.attestation_object);
    // Flip the last byte of the statement's signature: the text key "sig" (63 73 69 67)
    // followed by a byte string with a one-byte length.
    let at = att.windows(4).position(|w| w == b"csig").expect("sig label") + 4;
    let len_hdr = att[at];
    assert_eq!(len_hdr, 0x58, "sig is a byte string with a 1-byte length");
    let sig_end = at + 2 + usize::from(att[at + 1]);
    att[sig_end - 1] ^= 0x01;
    let mut j = registration_json(v);
    j["response"]["attestationObject"] = json!(b64url(&att));
    let reg = ceremony::parse_registration(&j).expect("still well-formed");
    let r = ceremony::verify_registration(&reg, &session(v.reg_challenge, Ceremony::Create, vec![]), &origins());
    assert!(matches!(r, Err(Rejection::AttestationStatement(_))), "{r:?}");
}

#[test]
fn assertion_rejections() {
    let v = vector("none.ES256");
    let stored = register(v).expect("registers");
    let good = assertion_json(v);

    // Another challenge (the registration's).
    let a = ceremony::parse_assertion(&good).expect("parses");
    let s = session(v.reg_challenge, Ceremony::Request, vec![stored.id.clone()]);
    let key = stored.key().expect("key");
    assert_eq!(ceremony::verify_assertion(&a, &s, &stored, &key, &origins()), Err(Rejection::Challenge));

    // Another origin than the allowed ones.
    let s = session(v.auth_challenge, Ceremony::Request, vec![stored.id.clone()]);
    let r = ceremony::verify_assertion(&a, &s, &stored, &key, &["https://other.example".to_owned()]);
    assert_eq!(r, Err(Rejection::Origin("https://example.org".into())));

    // Another relying party id.
    let mut s2 = s.clone();
    s2.rp_id = "example.com".into();
    assert_eq!(ceremony::verify_assertion(&a, &s2, &stored, &key, &origins()), Err(Rejection::RpIdHash));

    // UV required: the vector's assertion did not verify the user.
    let mut s3 = s.clone();
    s3.user_verification = "required".into();
    assert_eq!(ceremony::verify_assertion(&a, &s3, &stored, &key, &origins()), Err(Rejection::UserNotVerified));

    // A bogus signature (last byte flipped inside the DER INTEGER).
    let mut sig = hex(v.signature);
    *sig.last_mut().expect("byte") ^= 0x01;
    let mut bad = good.clone();
    bad["response"]["signature"] = json!(b64url(&sig));
    assert_eq!(authenticate(v, &bad, &stored), Err(Rejection::Signature));
    // Not DER at all: just not valid.
    bad["response"]["signature"] = json!(b64url(&[0u8; 8]));
    assert_eq!(authenticate(v, &bad, &stored), Err(Rejection::Signature));

    // UP cleared (and the signature no longer matters: UP is checked first).
    let mut ad = hex(v.authenticator_data);
    ad[32] &= !authdata::UP;
    let mut no_up = good.clone();
    no_up["response"]["authenticatorData"] = json!(b64url(&ad));
    assert_eq!(authenticate(v, &no_up, &stored), Err(Rejection::UserNotPresent));

    // Counter regression: the stored count is 5, the assertion says 0.
    let ahead = StoredCredential { sign_count: 5, ..stored.clone() };
    assert_eq!(authenticate(v, &good, &ahead), Err(Rejection::SignCount { stored: 5, received: 0 }));

    // Another credential than the factor's.
    let other = StoredCredential { id: b64url(b"another credential"), ..stored.clone() };
    assert_eq!(authenticate(v, &good, &other), Err(Rejection::UnknownCredential));

    // BE differs from the registered credential's.
    let not_be = StoredCredential { backup_eligible: false, ..stored.clone() };
    assert_eq!(authenticate(v, &good, &not_be), Err(Rejection::BackupFlags));

    // A user handle that is not this user's.
    let mut handle = good.clone();
    handle["response"]["userHandle"] = json!(b64url(&[9u8; 16]));
    assert_eq!(authenticate(v, &handle, &stored), Err(Rejection::UserHandle));
    handle["response"]["userHandle"] = json!(b64url(&[7u8; 16]));
    assert!(authenticate(v, &handle, &stored).is_ok());

    // A registration response is not an assertion, and type must be public-key.
    let mut typ = good.clone();
    typ["type"] = json!("password");
    assert_eq!(authenticate(v, &typ, &stored), Err(Rejection::CredentialType));
}

#[test]
fn registration_client_data_type_is_checked() {
    let v = vector("none.ES256");
    // The assertion's client data (type webauthn.get) in a registration.
    let mut j = registration_json(v);
    j["response"]["clientDataJSON"] = json!(b64url(&hex(v.auth_client_data)));
    let reg = ceremony::parse_registration(&j).expect("parses");
    let r = ceremony::verify_registration(&reg, &session(v.reg_challenge, Ceremony::Create, vec![]), &origins());
    assert_eq!(r, Err(Rejection::ClientDataType { expected: "webauthn.create" }));
}

#[test]
fn signature_algorithms_directly() {
    for name in ["none.ES256", "packed.RS256", "packed.EdDSA"] {
        let v = vector(name);
        let stored = register(v).expect("registers");
        let key: PublicKey = stored.key().expect("key");
        let mut msg = hex(v.authenticator_data);
        use sha2::Digest;
        msg.extend_from_slice(&sha2::Sha256::digest(hex(v.auth_client_data)));
        assert!(key.verify(&msg, &hex(v.signature)), "{name}");
        msg[0] ^= 1;
        assert!(!key.verify(&msg, &hex(v.signature)), "{name}: a changed message");
    }
}

fn parse_err(j: Json, ceremony: Ceremony) -> WebauthnError {
    match ceremony {
        Ceremony::Create => ceremony::parse_registration(&j).err().expect("an error"),
        Ceremony::Request => ceremony::parse_assertion(&j).err().expect("an error"),
    }
}

#[test]
fn malformed_credentials_name_the_field() {
    let v = vector("none.ES256");
    let reg = registration_json(v);
    let asr = assertion_json(v);
    assert_eq!(parse_err(json!([1, 2]), Ceremony::Create).field(), "credential");
    assert_eq!(parse_err(json!({"type": 1}), Ceremony::Create).field(), "type");
    let mut j = reg.clone();
    j["rawId"] = json!("not base64url!!");
    assert_eq!(parse_err(j, Ceremony::Create).field(), "rawId");
    let mut j = reg.clone();
    j["id"] = json!(b64url(b"x"));
    assert_eq!(parse_err(j, Ceremony::Create).field(), "id");
    let mut j = reg.clone();
    j["response"] = json!("nope");
    assert_eq!(parse_err(j, Ceremony::Create).field(), "response");
    let mut j = reg.clone();
    j["response"]["clientDataJSON"] = json!(b64url(b"{not json"));
    assert_eq!(parse_err(j, Ceremony::Create).field(), "response.clientDataJSON");
    let mut j = reg.clone();
    j["response"]["clientDataJSON"] = json!(b64url(br#"{"type":"webauthn.create","challenge":5,"origin":"x"}"#));
    assert_eq!(parse_err(j, Ceremony::Create).field(), "response.clientDataJSON");
    let mut j = reg.clone();
    j["response"]["attestationObject"] = json!(b64url(&[0xff, 0x00]));
    assert_eq!(parse_err(j, Ceremony::Create).field(), "response.attestationObject");
    // Trailing bytes after the attestation object.
    let mut att = hex(v.attestation_object);
    att.push(0);
    let mut j = reg.clone();
    j["response"]["attestationObject"] = json!(b64url(&att));
    assert_eq!(parse_err(j, Ceremony::Create).field(), "response.attestationObject");
    // Oversized fields are refused before decoding.
    let mut j = reg.clone();
    j["response"]["clientDataJSON"] = json!("A".repeat(1 << 20));
    assert!(matches!(parse_err(j, Ceremony::Create), WebauthnError::TooLong { field: "response.clientDataJSON", .. }));
    let mut j = asr.clone();
    j["response"]["signature"] = json!("A".repeat(4096));
    assert!(matches!(parse_err(j, Ceremony::Request), WebauthnError::TooLong { field: "response.signature", .. }));
    let mut j = asr.clone();
    j["response"]["userHandle"] = json!(b64url(&[1u8; 65]));
    assert!(matches!(parse_err(j, Ceremony::Request), WebauthnError::TooLong { field: "response.userHandle", .. }));
    // Truncated authenticator data.
    let mut j = asr.clone();
    j["response"]["authenticatorData"] = json!(b64url(&hex(v.authenticator_data)[..36]));
    assert_eq!(parse_err(j, Ceremony::Request).field(), "response.authenticatorData");
    // Trailing bytes after the authenticator data.
    let mut ad = hex(v.authenticator_data);
    ad.push(1);
    let mut j = asr.clone();
    j["response"]["authenticatorData"] = json!(b64url(&ad));
    assert_eq!(parse_err(j, Ceremony::Request).field(), "response.authenticatorData");
    // Missing fields.
    let mut j = asr.clone();
    j["response"].as_object_mut().expect("object").remove("signature");
    assert_eq!(parse_err(j, Ceremony::Request).field(), "response.signature");
}

#[test]
fn authenticator_data_with_extensions_after_the_key() {
    // The registration's authData with ED set and an extensions map appended: the key is
    // read as one CBOR item, and the extensions after it are not an error.
    let v = vector("none.ES256");
    let att = hex(v.attestation_object);
    let (value, _) = cose::read_cbor("t", &att).expect("cbor");
    let ciborium::value::Value::Map(m) = value else { panic!("map") };
    let ad = m.iter().find(|(k, _)| k.as_text() == Some("authData")).and_then(|(_, v)| v.as_bytes()).expect("authData");
    let mut ad = ad.clone();
    ad[32] |= authdata::ED;
    ad.extend_from_slice(&[0xa1, 0x6b]);
    ad.extend_from_slice(b"credProtect");
    ad.push(0x02);
    let parsed = authdata::parse("authData", &ad).expect("parses with extensions");
    assert_eq!(parsed.attested.expect("attested").credential_id, hex(v.credential_id));
    // ED set with nothing after the key: an error naming the field.
    let mut ad2 = ad.clone();
    ad2.truncate(ad.len() - 13);
    assert_eq!(authdata::parse("authData", &ad2).err().expect("error").field(), "authData");
}

#[test]
fn options_have_the_webauthn_json_shape() {
    let rp_origins = origins();
    let rp = ceremony::RelyingParty { id: "example.org", name: "Example", origins: &rp_origins };
    let stored = register(vector("none.ES256")).expect("registers");
    let c = ceremony::creation_options(
        &rp,
        &[1u8; 32],
        &[7u8; 16],
        "alice",
        "Alice",
        std::slice::from_ref(&stored),
        ceremony::UserVerification::Preferred,
        300_000,
    );
    assert_eq!(c["rp"]["id"], "example.org");
    assert_eq!(c["challenge"], b64url(&[1u8; 32]));
    assert_eq!(c["user"]["id"], b64url(&[7u8; 16]));
    assert_eq!(c["pubKeyCredParams"][0]["alg"], -7);
    assert_eq!(c["pubKeyCredParams"][1]["alg"], -8);
    assert_eq!(c["pubKeyCredParams"][2]["alg"], -257);
    assert_eq!(c["excludeCredentials"][0]["id"], stored.id);
    assert_eq!(c["attestation"], "none");
    let r = ceremony::request_options("example.org", &[2u8; 32], &stored, ceremony::UserVerification::Required, 60_000);
    assert_eq!(r["allowCredentials"].as_array().expect("array").len(), 1);
    assert_eq!(r["allowCredentials"][0]["id"], stored.id);
    assert_eq!(r["userVerification"], "required");
    assert_eq!(r["rpId"], "example.org");
}

#[test]
fn session_data_uses_go_webauthn_names() {
    let s = session("00", Ceremony::Request, vec!["abc".into()]);
    let j = serde_json::to_value(&s).expect("json");
    for k in ["challenge", "rpId", "user_id", "allowed_credentials", "userVerification", "expires", "type"] {
        assert!(j.get(k).is_some(), "{k} in {j}");
    }
    assert_eq!(j["type"], "request");
    let back: SessionData = serde_json::from_value(j).expect("round trip");
    assert_eq!(back, s);
}

/// The message an assertion's signature covers: authenticatorData || SHA-256(clientDataJSON).
fn signed_message(v: &Vector) -> Vec<u8> {
    use sha2::Digest;
    let mut msg = hex(v.authenticator_data);
    msg.extend_from_slice(&sha2::Sha256::digest(hex(v.auth_client_data)));
    msg
}

/// Big-endian 32-byte `a - b` (a >= b) and `a + b` (no overflow past 256 bits), for the tests'
/// signature edits below (integer arithmetic on the signature's scalars, no curve arithmetic).
fn be_sub(a: &[u8; 32], b: &[u8; 32]) -> [u8; 32] {
    let mut out = [0u8; 32];
    let mut borrow = 0i16;
    for i in (0..32).rev() {
        let d = i16::from(a[i]) - i16::from(b[i]) - borrow;
        borrow = i16::from(d < 0);
        out[i] = (d + 256 * borrow) as u8;
    }
    assert_eq!(borrow, 0);
    out
}

fn le_add(a: &[u8; 32], b: &[u8; 32]) -> [u8; 32] {
    let mut out = [0u8; 32];
    let mut carry = 0u16;
    for i in 0..32 {
        let s = u16::from(a[i]) + u16::from(b[i]) + carry;
        out[i] = s as u8;
        carry = s >> 8;
    }
    assert_eq!(carry, 0);
    out
}

/// One DER INTEGER (positive: a leading zero byte when the top bit is set).
fn der_int(v: &[u8]) -> Vec<u8> {
    let mut v: Vec<u8> = v.iter().copied().skip_while(|b| *b == 0).collect();
    if v.first().is_some_and(|b| b & 0x80 != 0) {
        v.insert(0, 0);
    }
    let mut out = vec![0x02, v.len() as u8];
    out.extend(v);
    out
}

fn der_sig_parts(sig: &[u8]) -> ([u8; 32], [u8; 32]) {
    assert_eq!(sig[0], 0x30);
    let mut at = 2;
    let mut ints = Vec::new();
    for _ in 0..2 {
        assert_eq!(sig[at], 0x02);
        let len = usize::from(sig[at + 1]);
        let body = &sig[at + 2..at + 2 + len];
        let mut fixed = [0u8; 32];
        let body: Vec<u8> = body.iter().copied().skip_while(|b| *b == 0).collect();
        fixed[32 - body.len()..].copy_from_slice(&body);
        ints.push(fixed);
        at += 2 + len;
    }
    (ints[0], ints[1])
}

/// ECDSA signatures are malleable: if (r, s) verifies, so does (r, n - s). Verdict: accepted,
/// as before the signature library changed, and as py_webauthn (OpenSSL) decides. Neither
/// WebAuthn nor COSE asks for low S (authenticators produce both halves), and nothing here
/// uses a signature as an identifier: each covers a fresh challenge that is used up once, so a
/// second valid form of one signature gains an attacker nothing.
#[test]
fn high_s_es256_signature_is_accepted() {
    const N: [u8; 32] = [
        0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xbc, 0xe6,
        0xfa, 0xad, 0xa7, 0x17, 0x9e, 0x84, 0xf3, 0xb9, 0xca, 0xc2, 0xfc, 0x63, 0x25, 0x51,
    ];
    let v = vector("none.ES256");
    let key = register(v).expect("registers").key().expect("key");
    let msg = signed_message(v);
    let (r, s) = der_sig_parts(&hex(v.signature));
    let flipped = be_sub(&N, &s);
    assert_ne!(flipped, s);
    let mut body = der_int(&r);
    body.extend(der_int(&flipped));
    let mut sig = vec![0x30, body.len() as u8];
    sig.extend(body);
    assert!(key.verify(&msg, &hex(v.signature)));
    assert!(key.verify(&msg, &sig), "(r, n - s) of a valid signature");
    // ... and a value that is not a signature still is not one.
    let mut body = der_int(&r);
    body.extend(der_int(&be_sub(&flipped, &{
        let mut one = [0u8; 32];
        one[31] = 1;
        one
    })));
    let mut bad = vec![0x30, body.len() as u8];
    bad.extend(body);
    assert!(!key.verify(&msg, &bad));
}

/// Ed25519 encodings that are not canonical: S + L in place of S (the same value mod L), and
/// a small-order public key. Verdict: refused, as before (ed25519-dalek's `verify_strict`,
/// which RFC 8032 §5.1.7 and the "Taming the many EdDSAs" criteria call for: S < L, no
/// small-order A or R), so a signature has exactly one accepted encoding.
#[test]
fn non_canonical_ed25519_is_refused() {
    // L = 2^252 + 27742317777372353535851937790883648493, little-endian.
    const L: [u8; 32] = [
        0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14, 0, 0, 0, 0, 0,
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
    ];
    let v = vector("packed.EdDSA");
    let key = register(v).expect("registers").key().expect("key");
    let msg = signed_message(v);
    let sig = hex(v.signature);
    assert!(key.verify(&msg, &sig));
    let s: [u8; 32] = sig[32..].try_into().unwrap();
    let mut sig2 = sig.clone();
    sig2[32..].copy_from_slice(&le_add(&s, &L));
    assert!(!key.verify(&msg, &sig2), "S + L");
    // A small-order key (the identity point, y = 1) with R = identity and S = 0 satisfies the
    // cofactorless equation for every message; verify_strict refuses it.
    let mut identity = [0u8; 32];
    identity[0] = 1;
    let cose = ciborium::value::Value::Map(vec![
        (cose::cbor_int(1), cose::cbor_int(1)),
        (cose::cbor_int(3), cose::cbor_int(cose::EDDSA)),
        (cose::cbor_int(-1), cose::cbor_int(6)),
        (cose::cbor_int(-2), ciborium::value::Value::Bytes(identity.to_vec())),
    ]);
    let weak = match cose::parse_key("test", &cose).expect("parses") {
        cose::Parsed::Key(k) => k,
        cose::Parsed::Unsupported(a) => panic!("unsupported {a}"),
    };
    let mut forged = identity.to_vec();
    forged.extend([0u8; 32]);
    assert!(!weak.verify(&msg, &forged), "small-order key and R");
}

/// RSA keys at the edges of what the signature library verifies: a COSE modulus with a
/// leading zero byte is the same key (stripped, then verified); exponents the library cannot
/// take (above 2^33-1, even, below 3) and an even modulus are refused at registration with a
/// message saying why, not at the first assertion.
#[test]
fn rsa_keys_at_the_library_limits() {
    use ciborium::value::Value;
    let v = vector("packed.RS256");
    let stored = register(v).expect("registers");
    let cbor = super::b64url_decode("k", &stored.public_key, 1 << 16).unwrap();
    let (value, _) = cose::read_cbor("k", &cbor).unwrap();
    let Value::Map(map) = value else { panic!("map") };
    let with = |label: i64, bytes: Vec<u8>| {
        Value::Map(
            map.iter()
                .map(|(k, val)| {
                    if matches!(k, Value::Integer(i) if i128::from(*i) == i128::from(label)) {
                        (k.clone(), Value::Bytes(bytes.clone()))
                    } else {
                        (k.clone(), val.clone())
                    }
                })
                .collect(),
        )
    };
    let n = match cose::map_get(&map, -1) {
        Some(Value::Bytes(b)) => b.clone(),
        _ => panic!("n"),
    };
    let msg = signed_message(v);
    let sig = hex(v.signature);
    let mut padded = vec![0u8];
    padded.extend(&n);
    match cose::parse_key("k", &with(-1, padded)).expect("a leading zero byte parses") {
        cose::Parsed::Key(k) => assert!(k.verify(&msg, &sig), "the same key verifies the vector"),
        cose::Parsed::Unsupported(a) => panic!("{a}"),
    }
    let refused = |label: i64, bytes: Vec<u8>| match cose::parse_key("k", &with(label, bytes)) {
        Err(e) => e.to_string(),
        Ok(_) => panic!("accepted"),
    };
    let big = (1u64 << 33) + 1;
    assert!(refused(-2, big.to_be_bytes().to_vec()).contains("between 3 and 2^33-1"));
    assert!(refused(-2, vec![0x01, 0x00, 0x00]).contains("must be odd"));
    assert!(refused(-2, vec![1]).contains("between 3 and 2^33-1"));
    assert!(refused(-2, vec![1; 9]).contains("between 3 and 2^33-1"));
    let mut even = n.clone();
    *even.last_mut().unwrap() &= 0xfe;
    assert!(refused(-1, even).contains("modulus is even"));
    let short = refused(-1, n[..200].to_vec());
    assert!(short.contains("bits (accepted: 2048 to 8192)"), "{short}");
    // The largest exponent it takes is taken (the signature then does not verify: another key).
    match cose::parse_key("k", &with(-2, ((1u64 << 33) - 1).to_be_bytes().to_vec())).expect("2^33-1 parses") {
        cose::Parsed::Key(k) => assert!(!k.verify(&msg, &sig)),
        cose::Parsed::Unsupported(a) => panic!("{a}"),
    }
}
