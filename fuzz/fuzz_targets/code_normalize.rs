#![no_main]
//! Any text as a code: normalisation never panics; a normalised code is exactly `digits` ASCII
//! digits; verification of it never panics and only matches inside the window.
use libfuzzer_sys::fuzz_target;
use mfa_auth_core::otp::hotp::{normalize_code, verify_totp, Algorithm, OtpParams};

fuzz_target!(|data: &[u8]| {
    let Some((&d, rest)) = data.split_first() else { return };
    let digits = 6 + u32::from(d % 5);
    let Ok(text) = std::str::from_utf8(rest) else { return };
    if let Some(code) = normalize_code(text, digits) {
        assert_eq!(code.as_str().len(), digits as usize);
        assert!(code.as_str().bytes().all(|b| b.is_ascii_digit()));
    }
    let params = OtpParams::new(Algorithm::Sha1, i64::from(digits), 30).unwrap();
    if let Some(step) = verify_totp(b"12345678901234567890", text, 1_700_000_000, 1, &params).unwrap() {
        assert!(step.abs_diff(1_700_000_000 / 30) <= 1);
    }
});
