#![no_main]
//! Any bytes: decoding never panics, and whatever decodes re-encodes to the same bytes.
use libfuzzer_sys::fuzz_target;
use mfa_auth_core::otp::base32;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(bytes) = base32::decode(text) {
            assert_eq!(base32::decode(&base32::encode(&bytes)).unwrap(), bytes);
        }
    }
});
