//! Property tests of the core over many pseudo-random inputs (a fixed-seed
//! generator, so a failure reproduces): round trips hold everywhere and junk
//! never panics.

use super::hotp::{hotp, normalize_code, verify_totp, Algorithm, OtpParams, MAX_WINDOW};
use super::{base32, uri};

/// xorshift64*: small, deterministic, good enough to spread test inputs.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next() as u8).collect()
    }
    fn junk(&mut self, max: usize) -> String {
        const PIECES: &[&str] = &[
            "A",
            "z",
            "2",
            "7",
            "8",
            "1",
            "0",
            "=",
            "-",
            " ",
            "\t",
            "%",
            "%4",
            "%41",
            "?",
            "&",
            ":",
            "/",
            "otpauth://",
            "totp/",
            "hotp/",
            "secret=",
            "issuer=",
            "digits=",
            "period=",
            "counter=",
            "algorithm=",
            "\u{e9}",
            "\u{1F600}",
            "\0",
            "\u{ff11}",
            "JBSWY3DP",
            "99999999999999999999",
        ];
        let n = self.below(max as u64 + 1) as usize;
        (0..n).map(|_| PIECES[self.below(PIECES.len() as u64) as usize]).collect()
    }
}

const ALGS: [Algorithm; 3] = [Algorithm::Sha1, Algorithm::Sha256, Algorithm::Sha512];

#[test]
fn generate_then_verify_inside_the_window_only() {
    let mut r = Rng(0x5eed_0001);
    for _ in 0..3000 {
        let n = 1 + r.below(80) as usize;
        let key = r.bytes(n);
        let alg = ALGS[r.below(3) as usize];
        let params = OtpParams::new(alg, 6 + r.below(5) as i64, 1 + r.below(300) as i64).unwrap();
        let now = r.below(1 << 40) as i64;
        let window = r.below(4) as u32;
        let current = now as u64 / params.period;
        let offset = r.below(2 * u64::from(window) + 5) as i64 - i64::from(window) - 2;
        let Some(step) = current.checked_add_signed(offset) else { continue };
        let code = hotp(&key, step, params.digits, alg);
        let got = verify_totp(&key, code.as_str(), now, window, &params).unwrap();
        if offset.unsigned_abs() <= u64::from(window) {
            // Found; a colliding nearer step may win, but never one outside the window.
            let s = got.expect("a code inside the window verifies");
            assert!(s.abs_diff(current) <= u64::from(window));
            if s != step {
                assert_eq!(hotp(&key, s, params.digits, alg).as_str(), code.as_str());
            }
        } else if let Some(s) = got {
            assert!(s.abs_diff(current) <= u64::from(window), "matched outside the window");
        }
    }
}

/// verify_totp (which computes SHA-1's HMACs three at a time) reports exactly what a plain
/// loop of hotp() over the steps 0, -1, +1, -2, +2, ... reports: the first matching step.
#[test]
fn verify_totp_equals_a_step_by_step_reference() {
    fn reference(key: &[u8], code: &str, now: i64, window: u32, p: &OtpParams) -> Option<u64> {
        let current = now as u64 / p.period;
        (0..=2 * i64::from(window))
            .map(|i| (i + 1) / 2 * if i % 2 == 1 { -1 } else { 1 })
            .filter_map(|offset| current.checked_add_signed(offset))
            .find(|&step| hotp(key, step, p.digits, p.algorithm).as_str() == code)
    }
    let mut r = Rng(0x5eed_0007);
    let mut found = 0;
    for n in 0..4000 {
        let len = 1 + r.below(80) as usize;
        let key = r.bytes(len);
        let alg = ALGS[r.below(3) as usize];
        let params = OtpParams::new(alg, 6 + r.below(5) as i64, 1 + r.below(60) as i64).unwrap();
        // Near the epoch too, where the earlier steps of the window do not exist.
        let now = if n % 4 == 0 { r.below(400) as i64 } else { r.below(1 << 40) as i64 };
        let window = r.below(u64::from(MAX_WINDOW) + 1) as u32;
        let current = now as u64 / params.period;
        let offset = r.below(2 * u64::from(window) + 5) as i64 - i64::from(window) - 2;
        let step = current.checked_add_signed(offset).unwrap_or(0);
        let code = hotp(&key, step, params.digits, alg);
        let got = verify_totp(&key, code.as_str(), now, window, &params).unwrap();
        assert_eq!(got, reference(&key, code.as_str(), now, window, &params), "case {n}");
        found += usize::from(got.is_some());
    }
    assert!(found > 2000, "the codes tried should mostly be inside their window, {found} were");
}

#[test]
fn base32_encode_decode_identity() {
    let mut r = Rng(0x5eed_0002);
    for _ in 0..5000 {
        let n = 1 + r.below(100) as usize;
        let data = r.bytes(n);
        let text = base32::encode(&data);
        assert_eq!(base32::decode(&text).unwrap(), data);
        // Grouped in fours with spaces, lower case, padded: still the same bytes.
        let grouped: String = text
            .to_lowercase()
            .chars()
            .enumerate()
            .flat_map(|(i, c)| if i > 0 && i % 4 == 0 { vec![' ', c] } else { vec![c] })
            .collect();
        let pad = (8 - text.len() % 8) % 8;
        assert_eq!(base32::decode(&format!("{grouped}{}", "=".repeat(pad))).unwrap(), data);
    }
}

#[test]
fn junk_never_panics() {
    let mut r = Rng(0x5eed_0003);
    for _ in 0..20000 {
        let s = r.junk(40);
        let _ = base32::decode(&s);
        let _ = uri::parse(&s);
        let _ = uri::parse(&format!("otpauth://totp/{s}"));
        let _ = uri::parse(&format!("otpauth://totp/a?secret=JBSWY3DP&{s}"));
        let digits = 6 + r.below(5) as u32;
        let _ = normalize_code(&s, digits);
        let _ = Algorithm::parse(&s);
    }
}

#[test]
fn parse_inverts_build() {
    let mut r = Rng(0x5eed_0004);
    for _ in 0..2000 {
        let n = 10 + r.below(60) as usize;
        let secret = base32::encode(&r.bytes(n));
        let account = format!("user{}{}", r.below(1000), r.junk(3).replace(':', ""));
        let account = if account.trim().is_empty() { "x".to_string() } else { account };
        let issuer = format!("Org {}", r.junk(2).replace(':', ""));
        let alg = ALGS[r.below(3) as usize];
        let digits = 6 + r.below(5) as u32;
        let period = 1 + r.below(120);
        let built = uri::build_totp(&secret, &account, Some(&issuer), alg, digits, period).unwrap();
        let p = uri::parse(&built).unwrap();
        assert_eq!(p.secret, secret);
        assert_eq!(p.account_name, account.trim());
        assert_eq!(p.issuer.as_deref(), Some(issuer.trim()));
        assert_eq!((p.algorithm, p.digits, p.period), (alg, digits, period));
    }
}
