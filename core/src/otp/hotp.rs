//! HOTP (RFC 4226) and TOTP (RFC 6238) with HMAC-SHA1/SHA256/SHA512.

use subtle::{Choice, ConditionallySelectable, ConstantTimeEq};

use super::{invalid, sha1_lanes, OtpError};

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

/// HMAC (RFC 2104) specialised for OTP, keyed once per verification.
///
/// An OTP message is the 8-byte counter, so the inner hash is exactly one padded block and
/// the outer hash (over the inner digest) one more. The key schedule (the ipad and opad
/// blocks) is compressed once in `new`; each counter then costs two calls of the hash's
/// compression function on stack buffers, with none of a streaming API's buffering.
/// `tests::matches_the_hmac_crate` checks it against RustCrypto's generic `hmac`.
#[derive(Clone)]
enum KeyedMac {
    Sha1 { inner: [u32; 5], outer: [u32; 5] },
    Sha256 { inner: [u32; 8], outer: [u32; 8] },
    Sha512 { inner: [u64; 8], outer: [u64; 8] },
}

const SHA1_H0: [u32; 5] = [0x6745_2301, 0xEFCD_AB89, 0x98BA_DCFE, 0x1032_5476, 0xC3D2_E1F0];
const SHA256_H0: [u32; 8] =
    [0x6a09_e667, 0xbb67_ae85, 0x3c6e_f372, 0xa54f_f53a, 0x510e_527f, 0x9b05_688c, 0x1f83_d9ab, 0x5be0_cd19];
const SHA512_H0: [u64; 8] = [
    0x6a09_e667_f3bc_c908,
    0xbb67_ae85_84ca_a73b,
    0x3c6e_f372_fe94_f82b,
    0xa54f_f53a_5f1d_36f1,
    0x510e_527f_ade6_82d1,
    0x9b05_688c_2b3e_6c1f,
    0x1f83_d9ab_fb41_bd6b,
    0x5be0_cd19_137e_2179,
];

/// The HMAC key block: the key, or its digest when longer than a block, zero padded.
fn key_block<const B: usize>(key: &[u8], digest: impl FnOnce(&[u8]) -> Vec<u8>) -> [u8; B] {
    let mut k = [0u8; B];
    if key.len() > B {
        let d = digest(key);
        k[..d.len()].copy_from_slice(&d);
    } else {
        k[..key.len()].copy_from_slice(key);
    }
    k
}

fn xor<const B: usize>(k: &[u8; B], pad: u8) -> [u8; B] {
    let mut out = *k;
    for b in out.iter_mut() {
        *b ^= pad;
    }
    out
}

/// One final 64-byte block holding `msg` (< 56 bytes), after `prefix` bytes already hashed.
fn final_block64(msg: &[u8], prefix: u64) -> [u8; 64] {
    let mut block = [0u8; 64];
    block[..msg.len()].copy_from_slice(msg);
    block[msg.len()] = 0x80;
    block[56..].copy_from_slice(&((prefix + msg.len() as u64) * 8).to_be_bytes());
    block
}

/// One final 128-byte block holding `msg` (< 112 bytes), after `prefix` bytes already hashed.
fn final_block128(msg: &[u8], prefix: u64) -> [u8; 128] {
    let mut block = [0u8; 128];
    block[..msg.len()].copy_from_slice(msg);
    block[msg.len()] = 0x80;
    block[112..].copy_from_slice(&(u128::from(prefix + msg.len() as u64) * 8).to_be_bytes());
    block
}

fn words32_be<const N: usize, const M: usize>(words: &[u32; N]) -> [u8; M] {
    let mut out = [0u8; M];
    for (i, w) in words.iter().enumerate() {
        out[4 * i..4 * i + 4].copy_from_slice(&w.to_be_bytes());
    }
    out
}

fn words64_be(words: &[u64; 8]) -> [u8; 64] {
    let mut out = [0u8; 64];
    for (i, w) in words.iter().enumerate() {
        out[8 * i..8 * i + 8].copy_from_slice(&w.to_be_bytes());
    }
    out
}

impl KeyedMac {
    fn new(algorithm: Algorithm, key: &[u8]) -> Self {
        use sha1::Digest;
        match algorithm {
            Algorithm::Sha1 => {
                let k = key_block::<64>(key, |k| sha1::Sha1::digest(k).to_vec());
                let mut pads = [SHA1_H0; 2];
                sha1_lanes::compress(&mut pads, &[xor(&k, 0x36), xor(&k, 0x5c)]);
                let [inner, outer] = pads;
                KeyedMac::Sha1 { inner, outer }
            }
            Algorithm::Sha256 => {
                let k = key_block::<64>(key, |k| sha2::Sha256::digest(k).to_vec());
                let (mut inner, mut outer) = (SHA256_H0, SHA256_H0);
                sha2::block_api::compress256(&mut inner, &[xor(&k, 0x36)]);
                sha2::block_api::compress256(&mut outer, &[xor(&k, 0x5c)]);
                KeyedMac::Sha256 { inner, outer }
            }
            Algorithm::Sha512 => {
                let k = key_block::<128>(key, |k| sha2::Sha512::digest(k).to_vec());
                let (mut inner, mut outer) = (SHA512_H0, SHA512_H0);
                sha2::block_api::compress512(&mut inner, &[xor(&k, 0x36)]);
                sha2::block_api::compress512(&mut outer, &[xor(&k, 0x5c)]);
                KeyedMac::Sha512 { inner, outer }
            }
        }
    }

    /// The HMAC of the 8-byte big-endian counter.
    fn mac(&self, counter: u64) -> ([u8; 64], usize) {
        let msg = counter.to_be_bytes();
        match self {
            KeyedMac::Sha1 { inner, outer } => {
                let [digest] = sha1_hmacs(inner, outer, &[counter]);
                let mut out = [0u8; 64];
                out[..20].copy_from_slice(&digest);
                (out, 20)
            }
            KeyedMac::Sha256 { inner, outer } => {
                let mut s = *inner;
                sha2::block_api::compress256(&mut s, &[final_block64(&msg, 64)]);
                let digest: [u8; 32] = words32_be(&s);
                let mut o = *outer;
                sha2::block_api::compress256(&mut o, &[final_block64(&digest, 64)]);
                let mut out = [0u8; 64];
                out[..32].copy_from_slice(&words32_be::<8, 32>(&o));
                (out, 32)
            }
            KeyedMac::Sha512 { inner, outer } => {
                let mut s = *inner;
                sha2::block_api::compress512(&mut s, &[final_block128(&msg, 128)]);
                let digest = words64_be(&s);
                let mut o = *outer;
                sha2::block_api::compress512(&mut o, &[final_block128(&digest, 128)]);
                (words64_be(&o), 64)
            }
        }
    }

    /// RFC 4226 §5.3: HMAC of the counter, then dynamic truncation.
    fn truncated(&self, counter: u64) -> u32 {
        let (mac, len) = self.mac(counter);
        dynamic_truncation(&&mac[..len])
    }

    /// [`Self::truncated`] of each counter. SHA-1 computes the `L` HMACs side by side
    /// (the inner blocks together, then the outer ones: see [`sha1_lanes`]); the other
    /// hashes one after the other.
    fn truncated_lanes<const L: usize>(&self, counters: &[u64; L]) -> [u32; L] {
        match self {
            KeyedMac::Sha1 { inner, outer } => sha1_hmacs(inner, outer, counters).map(|d| dynamic_truncation(&d)),
            _ => counters.map(|c| self.truncated(c)),
        }
    }
}

/// HMAC-SHA-1 of each 8-byte big-endian counter, from the key's compressed inner and outer
/// pads: one inner block per counter, compressed side by side, then one outer block each.
fn sha1_hmacs<const L: usize>(inner: &[u32; 5], outer: &[u32; 5], counters: &[u64; L]) -> [[u8; 20]; L] {
    let mut states = [*inner; L];
    sha1_lanes::compress(&mut states, &counters.map(|c| final_block64(&c.to_be_bytes(), 64)));
    let digests = states.map(|s| final_block64(&words32_be::<5, 20>(&s), 64));
    let mut states = [*outer; L];
    sha1_lanes::compress(&mut states, &digests);
    states.map(|s| words32_be(&s))
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
    /// The code as a number (its digits, leading zeros included, are its value).
    fn value(&self) -> u64 {
        self.buf[..self.len].iter().fold(0u64, |v, b| v * 10 + u64::from(b - b'0'))
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
    // Compare as numbers: a code of `digits` digits is its value (leading zeros included).
    let given = given.value();
    let mac = KeyedMac::new(params.algorithm, key);
    let m = modulus(params.digits);

    // The steps in the order tried: 0, -1, +1, -2, +2, ... (the first match is reported);
    // a step before 0 or past u64::MAX does not exist.
    let mut steps = [None; 2 * MAX_WINDOW as usize + 1];
    for (i, slot) in steps.iter_mut().enumerate().take(2 * window as usize + 1) {
        let offset = i.div_ceil(2) as i64 * if i % 2 == 1 { -1 } else { 1 };
        *slot = current.checked_add_signed(offset);
    }
    let steps = &steps[..2 * window as usize + 1];

    let mut found = Choice::from(0);
    let mut matched: u64 = 0;
    // Three HMACs at a time (window 1 is one batch); a missing step computes a throw-away
    // HMAC of counter 0 in its lane and is never compared.
    for batch in steps.chunks(3) {
        let mut counters = [0u64; 3];
        for (c, step) in counters.iter_mut().zip(batch) {
            *c = step.unwrap_or(0);
        }
        let values = match batch.len() {
            1 => [mac.truncated(counters[0]), 0, 0],
            2 => {
                let [a, b] = mac.truncated_lanes(&[counters[0], counters[1]]);
                [a, b, 0]
            }
            _ => mac.truncated_lanes(&counters),
        };
        for (step, value) in batch.iter().zip(values) {
            let Some(step) = *step else { continue };
            let eq = (u64::from(value) % m).ct_eq(&given);
            let take = eq & !found;
            matched.conditional_assign(&step, take);
            found |= eq;
        }
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
        let want = ["755224", "287082", "359152", "969429", "338314", "254676", "287922", "162583", "399871", "520489"];
        for (counter, code) in want.iter().enumerate() {
            assert_eq!(hotp(SEED20, counter as u64, 6, Algorithm::Sha1).as_str(), *code);
        }
        // The intermediate truncated values of Appendix D.
        let truncated: [u32; 10] = [
            1284755224, 1094287082, 137359152, 1726969429, 1640338314, 868254676, 1918287922, 82162583, 673399871,
            645520489,
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

    /// The specialised HMAC against RustCrypto's generic one, for keys around every block
    /// size (including the hash-the-key path) and assorted counters.
    #[test]
    fn matches_the_hmac_crate() {
        use hmac::{Hmac, KeyInit, Mac};
        fn reference<M: Mac + KeyInit>(key: &[u8], counter: u64) -> Vec<u8> {
            let mut m = <M as KeyInit>::new_from_slice(key).unwrap();
            m.update(&counter.to_be_bytes());
            m.finalize().into_bytes().to_vec()
        }
        let counters = [0u64, 1, 59 / 30, 41152263, u64::MAX, 1 << 40, 0x0102_0304_0506_0708];
        for len in [0usize, 1, 19, 20, 32, 55, 56, 63, 64, 65, 100, 127, 128, 129, 200, 300] {
            let key: Vec<u8> = (0..len).map(|i| (i * 7 + len) as u8).collect();
            for &c in &counters {
                let (mac, n) = KeyedMac::new(Algorithm::Sha1, &key).mac(c);
                assert_eq!(&mac[..n], reference::<Hmac<sha1::Sha1>>(&key, c).as_slice(), "sha1 len={len} c={c}");
                let (mac, n) = KeyedMac::new(Algorithm::Sha256, &key).mac(c);
                assert_eq!(&mac[..n], reference::<Hmac<sha2::Sha256>>(&key, c).as_slice(), "sha256 len={len}");
                let (mac, n) = KeyedMac::new(Algorithm::Sha512, &key).mac(c);
                assert_eq!(&mac[..n], reference::<Hmac<sha2::Sha512>>(&key, c).as_slice(), "sha512 len={len}");
            }
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
