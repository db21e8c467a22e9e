#![no_main]
//! Any bytes, as a browser's credential JSON (both ceremonies), as authenticator data and as a
//! COSE key: parsing never panics, and whatever parses goes through the checks without a panic.
use libfuzzer_sys::fuzz_target;
use mfa_auth_core::webauthn::ceremony::{self, Ceremony, SessionData, StoredCredential};
use mfa_auth_core::webauthn::{authdata, cose};

fn session(ceremony: Ceremony) -> SessionData {
    SessionData {
        challenge: "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA".into(),
        rp_id: "example.org".into(),
        user_id: "AAAAAAAAAAAAAAAAAAAAAA".into(),
        allowed_credentials: vec!["AAAA".into()],
        user_verification: "preferred".into(),
        expires: String::new(),
        ceremony,
    }
}

fuzz_target!(|data: &[u8]| {
    let origins = vec!["https://example.org".to_owned()];
    if let Ok(json) = serde_json::from_slice::<serde_json::Value>(data) {
        if let Ok(reg) = ceremony::parse_registration(&json) {
            let _ = ceremony::verify_registration(&reg, &session(Ceremony::Create), &origins);
        }
        if let Ok(a) = ceremony::parse_assertion(&json) {
            // A stored ES256 key (the W3C L3 none.ES256 vector's).
            let stored = StoredCredential {
                id: "AAAA".into(),
                public_key: "pQECAyYgASFYIK_voW-XypstI-uGzLZAmNINuQhWBi6yScM6m2cvJt9hIlggkwpWuHovymYzSwNFir-HlxfBLMaO1zKQry4mZHlrkiA".into(),
                algorithm: -7,
                sign_count: 0,
                backup_eligible: false,
                backup_state: false,
                user_verified: false,
                aaguid: String::new(),
                attestation_format: "none".into(),
                transports: vec![],
            };
            let key = stored.key().expect("the stored key parses");
            let _ = ceremony::verify_assertion(&a, &session(Ceremony::Request), &stored, &key, &origins);
        }
    }
    let _ = authdata::parse("authData", data);
    if let Ok((value, used)) = cose::read_cbor("key", data) {
        assert!(used <= data.len());
        let _ = cose::parse_key("key", &value);
    }
});
