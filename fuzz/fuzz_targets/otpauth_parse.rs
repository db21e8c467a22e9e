#![no_main]
//! Any text: parsing never panics, and a parsed TOTP URI rebuilds into one that parses the same.
use libfuzzer_sys::fuzz_target;
use mfa_auth_core::otp::uri::{self, Kind};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(k) = uri::parse(text) else { return };
    if k.kind == Kind::Totp {
        if let Ok(again) = uri::build_totp(&k.secret, &k.account_name, k.issuer.as_deref(), k.algorithm, k.digits, k.period) {
            let p = uri::parse(&again).expect("a built URI parses");
            assert_eq!((p.secret, p.algorithm, p.digits, p.period), (k.secret, k.algorithm, k.digits, k.period));
        }
    }
});
