//! HOTP (RFC 4226) and TOTP (RFC 6238) with HMAC-SHA1/SHA256/SHA512.

use hmac::{Hmac, KeyInit, Mac};
use subtle::{ConditionallySelectable, ConstantTimeEq, Choice};

use super::{invalid, OtpError};

/// The HMAC hash function of an OTP credential.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    Sha1,
    Sha256,
    Sha512,
}

impl Algorithm {
    /// Parses `SHA1`, `SHA256`, `SHA512` in any case (also `SHA-1` style with a hyphen).
    pub fn parse(s: &str) -> Result<Self, OtpError> {
        let t = s.trim();
        let eq = |want: &str| t.eq_ignore_ascii_case(want);
        if eq("SHA1") || eq("SHA-1") {
            Ok(Algorithm::Sha1)
        } else if eq("SHA256") || eq("SHA-256") {
            Ok(Algorithm::Sha256)
        } else if eq("SHA512") || eq("SHA-512") {
            Ok(Algorithm::Sha512)
        } else {
            Err(invalid("algorithm", "must be SHA1, SHA256 or SHA512"))
        }
    }

    /// The name used in otpauth URIs.
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Sha1 => "SHA1",
            Algorithm::Sha256 => "SHA256",
            Algorithm::Sha512 => "SHA512",
        }
    }
}

pub const MIN_DIGITS: u32 = 6;
pub const MAX_DIGITS: u32 = 10;
pub const MAX_WINDOW: u32 = 10;

/// Checked OTP parameters: digits in 6..=10, period >= 1 s.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OtpParams {
    pub algorithm: Algorithm,
    pub digits: u32,
    pub period: u64,
}

impl Default for OtpParams {
    fn default() -> Self {
        OtpParams { algorithm: Algorithm::Sha1, digits: 6, period: 30 }
    }
}

impl OtpParams {
    pub fn new(algorithm: Algorithm, digits: i64, period: i64) -> Result<Self, OtpError> {
        Ok(OtpParams { algorithm, digits: check_digits(digits)?, period: check_period(period)? })
    }

    /// The TOTP time step that contains `unix_seconds` (RFC 6238, T0 = 0).
    pub fn time_step(&self, unix_seconds: i64) -> Result<u64, OtpError> {
        if unix_seconds < 0 {
            return Err(invalid("at", "times before 1970-01-01 00:00:00 UTC have no TOTP time step"));
        }
        Ok(unix_seconds as u64 / self.period)
    }
}

pub fn check_digits(digits: i64) -> Result<u32, OtpError> {
    if (i64::from(MIN_DIGITS)..=i64::from(MAX_DIGITS)).contains(&digits) {
        Ok(digits as u32)
    } else {
        Err(invalid("digits", format!("must be between {MIN_DIGITS} and {MAX_DIGITS}, got {digits}")))
    }
}

pub fn check_period(period: i64) -> Result<u64, OtpError> {
    if period >= 1 {
        Ok(period as u64)
    } else {
        Err(invalid("period", format!("must be at least 1 second, got {period}")))
    }
}

pub fn check_window(window: i64) -> Result<u32, OtpError> {
    if (0..=i64::from(MAX_WINDOW)).contains(&window) {
        Ok(window as u32)
    } else {
        Err(invalid("window", format!("must be between 0 and {MAX_WINDOW} time steps, got {window}")))
    }
}

/// An HMAC keyed once, cloned per counter: verifying a window of steps pays for
/// the key schedule (the ipad/opad blocks) once, not once per step.
#[derive(Clone)]
enum KeyedMac {
    Sha1(Hmac<sha1::Sha1>),
    Sha256(Hmac<sha2::Sha256>),
    Sha512(Hmac<sha2::Sha512>),
}

impl KeyedMac {
    fn new(algorithm: Algorithm, key: &[u8]) -> Self {
        // HMAC accepts keys of any length; new_from_slice cannot fail for it.
        match algorithm {
            Algorithm::Sha1 => KeyedMac::Sha1(<Hmac<sha1::Sha1> as KeyInit>::new_from_slice(key).expect("HMAC takes any key length")),
            Algorithm::Sha256 => KeyedMac::Sha256(<Hmac<sha2::Sha256> as KeyInit>::new_from_slice(key).expect("HMAC takes any key length")),
            Algorithm::Sha512 => KeyedMac::Sha512(<Hmac<sha2::Sha512> as KeyInit>::new_from_slice(key).expect("HMAC takes any key length")),
        }
    }

    /// RFC 4226 §5.3: HMAC of the 8-byte big-endian counter, dynamic truncation.
    fn truncated(&self, counter: u64) -> u32 {
        let msg = counter.to_be_bytes();
        match self {
            KeyedMac::Sha1(m) => dynamic_truncation(&finish(m.clone(), &msg)),
            KeyedMac::Sha256(m) => dynamic_truncation(&finish(m.clone(), &msg)),
            KeyedMac::Sha512(m) => dynamic_truncation(&finish(m.clone(), &msg)),
        }
    }
}

fn finish<M: Mac>(mut m: M, msg: &[u8]) -> impl AsRef<[u8]> {
    m.update(msg);
    m.finalize().into_bytes()
}

#[inline]
fn dynamic_truncation(hash: &impl AsRef<[u8]>) -> u32 {
    let h = hash.as_ref();
    let offset = (h[h.len() - 1] & 0x0f) as usize;
    u32::from_be_bytes([h[offset] & 0x7f, h[offset + 1], h[offset + 2], h[offset + 3]])
}

#[inline]
fn modulus(digits: u32) -> u64 {
    10u64.pow(digits)
}

/// A generated code as a fixed-size, zero-padded ASCII buffer (no allocation).
#[derive(Clone, Copy)]
pub struct Code {
    buf: [u8; MAX_DIGITS as usize],
    len: usize,
}

impl Code {
    fn new(value: u64, digits: u32) -> Self {
        let mut buf = [b'0'; MAX_DIGITS as usize];
        let mut v = value;
        for i in (0..digits as usize).rev() {
            buf[i] = b'0' + (v % 10) as u8;
            v /= 10;
        }
        Code { buf, len: digits as usize }
    }
    pub fn as_str(&self) -> &str {
        // Only ASCII digits are ever written.
        std::str::from_utf8(&self.buf[..self.len]).expect("ASCII digits")
    }
}

/// The HOTP value for `counter` with `digits` digits.
pub fn hotp(key: &[u8], counter: u64, digits: u32, algorithm: Algorithm) -> Code {
    let value = u64::from(KeyedMac::new(algorithm, key).truncated(counter)) % modulus(digits);
    Code::new(value, digits)
}

/// The TOTP value at `unix_seconds`.
pub fn totp(key: &[u8], unix_seconds: i64, params: &OtpParams) -> Result<Code, OtpError> {
    let step = params.time_step(unix_seconds)?;
    Ok(hotp(key, step, params.digits, params.algorithm))
}

/// What a user typed, reduced to its digits: ASCII spaces, tabs and hyphens between
/// digits are dropped ("123 456", "123-456"). `None` when anything else is present
/// or the number of digits is not `digits`: such a code can only be wrong.
pub fn normalize_code(input: &str, digits: u32) -> Option<Code> {
    let mut buf = [0u8; MAX_DIGITS as usize];
    let mut len = 0usize;
    for b in input.trim().bytes() {
        match b {
            b'0'..=b'9' => {
                if len == digits as usize {
                    return None;
                }
                buf[len] = b;
                len += 1;
            }
            b' ' | b'\t' | b'-' => {}
            _ => return None,
        }
    }
    (len == digits as usize).then_some(Code { buf, len })
}

/// Verifies a TOTP code over `window` steps either side of the step containing
/// `unix_seconds`. Returns the matched time step, or `None`.
///
/// Every step in the window is computed and compared in constant time, whatever
/// matches: the running time does not reveal which step (if any) matched. If two
/// steps produce the same code, the one nearest the current step wins (0, -1, +1, ...).
pub fn verify_totp(
    key: &[u8],
    code: &str,
    unix_seconds: i64,
    window: u32,
    params: &OtpParams,
) -> Result<Option<u64>, OtpError> {
    let current = params.time_step(unix_seconds)?;
    let Some(given) = normalize_code(code, params.digits) else {
        return Ok(None);
    };
    let mac = KeyedMac::new(params.algorithm, key);
    let m = modulus(params.digits);
    let given = given.as_str().as_bytes();

    let mut found = Choice::from(0);
    let mut matched: u64 = 0;
    for i in 0..=(2 * window) {
        // 0, -1, +1, -2, +2, ...
        let offset = i64::from(i.div_ceil(2)) * if i % 2 == 1 { -1 } else { 1 };
        let Some(step) = current.checked_add_signed(offset) else { continue };
        let candidate = Code::new(u64::from(mac.truncated(step)) % m, params.digits);
        let eq = candidate.as_str().as_bytes().ct_eq(given);
        let take = eq & !found;
        matched.conditional_assign(&step, take);
        found |= eq;
    }
    Ok(bool::from(found).then_some(matched))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEED20: &[u8] = b"12345678901234567890";
    const SEED32: &[u8] = b"12345678901234567890123456789012";
    const SEED64: &[u8] = b"1234567890123456789012345678901234567890123456789012345678901234";

    #[test]
    fn rfc4226_appendix_d() {
        let want = [
            "755224", "287082", "359152", "969429", "338314", "254676", "287922", "162583", "399871",
            "520489",
        ];
        for (counter, code) in want.iter().enumerate() {
            assert_eq!(hotp(SEED20, counter as u64, 6, Algorithm::Sha1).as_str(), *code);
        }
        // The intermediate truncated values of Appendix D.
        let truncated: [u32; 10] = [
            1284755224, 1094287082, 137359152, 1726969429, 1640338314, 868254676, 1918287922,
            82162583, 673399871, 645520489,
        ];
        let mac = KeyedMac::new(Algorithm::Sha1, SEED20);
        for (c, t) in truncated.iter().enumerate() {
            assert_eq!(mac.truncated(c as u64), *t);
        }
    }

    /// All 18 rows of RFC 6238 Appendix B.
    pub const RFC6238: [(i64, &str, &str); 18] = [
        (59, "94287082", "SHA1"),
        (59, "46119246", "SHA256"),
        (59, "90693936", "SHA512"),
        (1111111109, "07081804", "SHA1"),
        (1111111109, "68084774", "SHA256"),
        (1111111109, "25091201", "SHA512"),
        (1111111111, "14050471", "SHA1"),
        (1111111111, "67062674", "SHA256"),
        (1111111111, "99943326", "SHA512"),
        (1234567890, "89005924", "SHA1"),
        (1234567890, "91819424", "SHA256"),
        (1234567890, "93441116", "SHA512"),
        (2000000000, "69279037", "SHA1"),
        (2000000000, "90698825", "SHA256"),
        (2000000000, "38618901", "SHA512"),
        (20000000000, "65353130", "SHA1"),
        (20000000000, "77737706", "SHA256"),
        (20000000000, "47863826", "SHA512"),
    ];

    fn seed(alg: Algorithm) -> &'static [u8] {
        match alg {
            Algorithm::Sha1 => SEED20,
            Algorithm::Sha256 => SEED32,
            Algorithm::Sha512 => SEED64,
        }
    }

    #[test]
    fn rfc6238_appendix_b() {
        for (t, code, alg) in RFC6238 {
            let alg = Algorithm::parse(alg).unwrap();
            let p = OtpParams::new(alg, 8, 30).unwrap();
            assert_eq!(totp(seed(alg), t, &p).unwrap().as_str(), code, "t={t} {alg:?}");
            let step = verify_totp(seed(alg), code, t, 1, &p).unwrap();
            assert_eq!(step, Some(t as u64 / 30));
        }
    }

    #[test]
    fn window_finds_the_right_step_and_nothing_outside() {
        let p = OtpParams::default();
        let now = 1_700_000_000i64;
        let cur = now as u64 / 30;
        for off in -3i64..=3 {
            let step = cur.checked_add_signed(off).unwrap();
            let code = hotp(SEED20, step, 6, Algorithm::Sha1);
            let got = verify_totp(SEED20, code.as_str(), now, 1, &p).unwrap();
            if off.abs() <= 1 {
                assert_eq!(got, Some(step), "offset {off}");
            } else {
                // Outside the window; could only match by a code collision.
                if let Some(s) = got {
                    assert!(s.abs_diff(cur) <= 1);
                }
            }
        }
    }

    #[test]
    fn window_zero_at_epoch_and_far_future() {
        let p = OtpParams::default();
        let c = totp(SEED20, 0, &p).unwrap();
        assert_eq!(verify_totp(SEED20, c.as_str(), 0, 1, &p).unwrap(), Some(0));
        // Year 2603 and well beyond: 64-bit steps.
        let far = 20_000_000_000_000i64;
        let c = totp(SEED20, far, &p).unwrap();
        assert_eq!(verify_totp(SEED20, c.as_str(), far, 0, &p).unwrap(), Some(far as u64 / 30));
        assert!(verify_totp(SEED20, "123456", -1, 1, &p).is_err());
        assert!(totp(SEED20, -30, &p).is_err());
    }

    #[test]
    fn ten_digits_and_any_key_length() {
        let p = OtpParams::new(Algorithm::Sha1, 10, 30).unwrap();
        // 10 digits: the 31-bit truncated value, zero padded.
        assert_eq!(hotp(SEED20, 0, 10, Algorithm::Sha1).as_str(), "1284755224");
        assert_eq!(hotp(SEED20, 7, 10, Algorithm::Sha1).as_str(), "0082162583");
        for len in [1usize, 5, 19, 20, 21, 64, 65, 200] {
            let key: Vec<u8> = (0..len).map(|i| i as u8).collect(); // leading zero byte
            let c = totp(&key, 1234567890, &p).unwrap();
            assert_eq!(verify_totp(&key, c.as_str(), 1234567890, 0, &p).unwrap(), Some(41152263));
        }
    }

    #[test]
    fn code_normalisation() {
        assert_eq!(normalize_code("123456", 6).unwrap().as_str(), "123456");
        assert_eq!(normalize_code(" 123 456 ", 6).unwrap().as_str(), "123456");
        assert_eq!(normalize_code("123-456", 6).unwrap().as_str(), "123456");
        for bad in ["", "12345", "1234567", "12345a", "１２３４５６", "123456\0", "+123456"] {
            assert!(normalize_code(bad, 6).is_none(), "{bad:?}");
        }
    }

    #[test]
    fn parameters_are_checked() {
        assert!(check_digits(5).is_err());
        assert!(check_digits(11).is_err());
        assert!(check_period(0).is_err());
        assert!(check_window(-1).is_err());
        assert!(check_window(11).is_err());
        assert!(Algorithm::parse("md5").is_err());
        assert_eq!(Algorithm::parse("sha256").unwrap(), Algorithm::Sha256);
        assert_eq!(Algorithm::parse("Sha-512").unwrap(), Algorithm::Sha512);
    }
}
