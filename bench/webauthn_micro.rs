//! Micro-benchmark of the pure WebAuthn core on the W3C L3 "ES256 Credential with No
//! Attestation" assertion: µs per step (JSON parse, structure, stored key, signature, all),
//! then the signature check alone for each algorithm's W3C vector (ES256, RS256, EdDSA).
//! Run: cargo run --release --example webauthn_micro   (prints figures; no pass/fail)

use std::hint::black_box;
use std::time::Instant;

use mfa_auth::webauthn::b64url;
use mfa_auth::webauthn::ceremony::{self, Ceremony, SessionData, StoredCredential};

#[allow(dead_code)]
#[path = "../core/src/webauthn/w3c_vectors.rs"]
mod w3c_vectors;

fn time_us<F: FnMut()>(iters: u32, mut f: F) -> f64 {
    for _ in 0..iters / 10 {
        f();
    }
    (0..5)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..iters {
                f();
            }
            t.elapsed().as_nanos() as f64 / f64::from(iters) / 1000.0
        })
        .fold(f64::INFINITY, f64::min)
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
}

fn main() {
    let id = b64url(&hex("f91f391db4c9b2fde0ea70189cba3fb63f579ba6122b33ad94ff3ec330084be4"));
    // The stored credential and assertion of the vector, as SQL would hold them.
    let stored = StoredCredential {
        id: id.clone(),
        public_key:
            "pQECAyYgASFYIK_voW-XypstI-uGzLZAmNINuQhWBi6yScM6m2cvJt9hIlggkwpWuHovymYzSwNFir-HlxfBLMaO1zKQry4mZHlrkiA"
                .into(),
        algorithm: -7,
        sign_count: 0,
        backup_eligible: true,
        backup_state: true,
        user_verified: false,
        aaguid: "8446ccb9-ab1d-b374-750b-2367ff6f3a1f".into(),
        attestation_format: "none".into(),
        transports: vec![],
    };
    let client = hex("7b2274797065223a22776562617574686e2e676574222c226368616c6c656e6765223a224f63446e55685158756c5455506f334a5558543049393770767a7a59425039745a63685879617630314167222c226f726967696e223a2268747470733a2f2f6578616d706c652e6f7267222c2263726f73734f726967696e223a66616c73657d");
    let auth = hex("bfabc37432958b063360d3ad6461c9c4735ae7f8edd46592a5e0f01452b2e4b51900000000");
    let sig = hex("3046022100f50a4e2e4409249c4a853ba361282f09841df4dd4547a13a87780218deffcd380221008480ac0f0b93538174f575bf11a1dd5d78c6e486013f937295ea13653e331e87");
    let text = serde_json::json!({"id": id, "rawId": id, "type": "public-key", "response": {
        "clientDataJSON": b64url(&client), "authenticatorData": b64url(&auth), "signature": b64url(&sig)}})
    .to_string();
    let session = SessionData {
        challenge: b64url(&hex("39c0e7521417ba54d43e8dc95174f423dee9bf3cd804ff6d65c857c9abf4d408")),
        rp_id: "example.org".into(),
        user_id: b64url(&[7u8; 16]),
        allowed_credentials: vec![id.clone()],
        user_verification: "preferred".into(),
        expires: String::new(),
        ceremony: Ceremony::Request,
    };
    let session_text = serde_json::to_string(&session).unwrap();
    let stored_text = serde_json::to_string(&stored).unwrap();
    let origins = vec!["https://example.org".to_owned()];
    let key = stored.key().unwrap();
    let a = ceremony::parse_assertion(&serde_json::from_str(&text).unwrap()).unwrap();
    assert!(ceremony::verify_assertion(&a, &session, &stored, &key, &origins).is_ok());
    println!("WebAuthn core micro-benchmark (W3C L3 none.ES256 assertion; best of 5 runs), µs per call");
    let n = 2000;
    println!(
        "{:<46} {:>8.1}",
        "parse credential JSON text",
        time_us(n, || {
            black_box(serde_json::from_str::<serde_json::Value>(black_box(&text)).unwrap());
        })
    );
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    println!(
        "{:<46} {:>8.1}",
        "parse_assertion (base64url, clientData, authData)",
        time_us(n, || {
            black_box(ceremony::parse_assertion(black_box(&json)).unwrap());
        })
    );
    println!(
        "{:<46} {:>8.1}",
        "session data + stored credential from JSON",
        time_us(n, || {
            black_box(serde_json::from_str::<SessionData>(black_box(&session_text)).unwrap());
            black_box(serde_json::from_str::<StoredCredential>(black_box(&stored_text)).unwrap());
        })
    );
    println!(
        "{:<46} {:>8.1}",
        "stored COSE key -> P-256 verifying key",
        time_us(n, || {
            black_box(black_box(&stored).key().unwrap());
        })
    );
    println!(
        "{:<46} {:>8.1}",
        "verify_assertion (checks + ECDSA P-256)",
        time_us(n, || {
            black_box(ceremony::verify_assertion(&a, &session, &stored, &key, &origins).unwrap());
        })
    );
    println!(
        "{:<46} {:>8.1}",
        "all of it",
        time_us(n, || {
            let json: serde_json::Value = serde_json::from_str(&text).unwrap();
            let a = ceremony::parse_assertion(&json).unwrap();
            let s: SessionData = serde_json::from_str(&session_text).unwrap();
            let st: StoredCredential = serde_json::from_str(&stored_text).unwrap();
            let k = st.key().unwrap();
            let out = ceremony::verify_assertion(&a, &s, &st, &k, &origins).unwrap();
            black_box(serde_json::to_string(&out).unwrap());
        })
    );
    println!("signature check alone (PublicKey::verify of the W3C vector's assertion), µs per call");
    for name in ["none.ES256", "packed.RS256", "packed.EdDSA"] {
        let v = w3c_vectors::VECTORS.iter().find(|v| v.name == name).expect("vector");
        let id = b64url(&hex(v.credential_id));
        let reg = serde_json::json!({"id": id, "rawId": id, "type": "public-key", "response": {
            "clientDataJSON": b64url(&hex(v.reg_client_data)), "attestationObject": b64url(&hex(v.attestation_object))}});
        let session = SessionData {
            challenge: b64url(&hex(v.reg_challenge)),
            rp_id: "example.org".into(),
            user_id: b64url(&[7u8; 16]),
            allowed_credentials: vec![],
            user_verification: "preferred".into(),
            expires: String::new(),
            ceremony: Ceremony::Create,
        };
        let reg = ceremony::parse_registration(&reg).unwrap();
        let key = ceremony::verify_registration(&reg, &session, &origins).unwrap().key().unwrap();
        let mut msg = hex(v.authenticator_data);
        use sha2::Digest;
        msg.extend_from_slice(&sha2::Sha256::digest(hex(v.auth_client_data)));
        let sig = hex(v.signature);
        assert!(key.verify(&msg, &sig));
        println!("{:<46} {:>8.1}", format!("verify {name}"), time_us(n, || assert!(black_box(key.verify(&msg, &sig)))));
    }
}
