#![no_main]
//! Any text as a keyring or a stored secret: parsing and opening never panic; whatever a
//! keyring seals opens again to the same secret, for that row only.
use libfuzzer_sys::fuzz_target;
use mfa_auth_core::sealing::{open, seal, Keyring, SealError};

const RING: &str = "k2:ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8=,k1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let _ = Keyring::parse(text);
    let ring = Keyring::parse(RING).unwrap();
    let id = [data.len() as u8; 16];
    match open(&ring, &id, text) {
        Ok(o) => assert!(!o.secret.is_empty() || text.is_empty() || text.starts_with("mfa1:")),
        Err(SealError::Keyring { .. }) | Err(SealError::NoKey) => panic!("open never reports keyring errors"),
        Err(_) => {}
    }
    let sealed = seal(&ring, &id, text, [7; 12]).unwrap();
    assert_eq!(open(&ring, &id, &sealed).unwrap().secret, text);
    let mut other = id;
    other[0] ^= 1;
    assert!(open(&ring, &other, &sealed).is_err());
});
