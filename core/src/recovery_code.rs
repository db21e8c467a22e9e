//! Recovery codes: single-use backup codes.
//!
//! A code is 16 characters of Crockford's base32 alphabet (lowercase `0-9a-z` without `i`,
//! `l`, `o`, `u`), each from 5 CSPRNG bits: 80 bits per code. Shown grouped
//! (`7kq4-m2xp-9dwe-j3ab`); read back ignoring hyphens, spaces and case, with Crockford's
//! readings of the letters people confuse (`i`/`l` as `1`, `o` as `0`).
//!
//! Only a hash is stored, bound to its set (the set id is hashed with the code, so equal
//! codes of two sets do not hash alike):
//!
//! - `r2$<key id>$<hex HMAC-SHA256(server key, set id || code)>` when a master key is
//!   configured (the server key derived from master key `<key id>`): a row alone (a dump, a
//!   replica) gives nothing to check guesses against;
//! - `r1$<hex SHA-256("mfa_auth recovery code" || set id || code)>` without one: 80 bits of
//!   entropy make the unkeyed hash as hard to invert as guessing the code.
//!
//! A slow hash would add nothing against 80-bit codes and would make every guess a CPU cost
//! for the database: a check is one index look-up of the candidate hashes (one per configured
//! key) and a constant-time compare.

use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::otp::secret::random_bytes;
use crate::otp::OtpError;

/// Crockford's base32 alphabet, lowercase.
pub const ALPHABET: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";
/// Characters of a code (16 x 5 bits = 80 bits).
pub const CODE_CHARS: usize = 16;
/// Codes a set may hold.
pub const MIN_COUNT: i64 = 4;
pub const MAX_COUNT: i64 = 16;
/// Longest input looked at (a longer one cannot be a code, however it is spaced).
pub const MAX_INPUT: usize = 256;

/// A new random code (16 characters, not grouped).
pub fn generate() -> Result<String, OtpError> {
    let mut bytes = [0u8; CODE_CHARS];
    random_bytes(&mut bytes)?;
    // 256 is a multiple of 32: the low 5 bits of a uniform byte are uniform.
    Ok(bytes.iter().map(|b| ALPHABET[usize::from(b & 31)] as char).collect())
}

/// `7kq4m2xp9dwej3ab` -> `7kq4-m2xp-9dwe-j3ab`.
pub fn grouped(code: &str) -> String {
    code.as_bytes().chunks(4).map(|c| std::str::from_utf8(c).expect("ASCII")).collect::<Vec<_>>().join("-")
}

/// The code in `input` (16 alphabet characters), ignoring hyphens, spaces and case; None
/// when it cannot be a code.
pub fn normalize(input: &str) -> Option<String> {
    if input.len() > MAX_INPUT {
        return None;
    }
    let mut out = String::with_capacity(CODE_CHARS);
    for c in input.chars() {
        let c = match c.to_ascii_lowercase() {
            '-' | ' ' | '\t' => continue,
            'i' | 'l' => '1',
            'o' => '0',
            c => c,
        };
        if !c.is_ascii() || !ALPHABET.contains(&(c as u8)) || out.len() == CODE_CHARS {
            return None;
        }
        out.push(c);
    }
    (out.len() == CODE_CHARS).then_some(out)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The stored form of `code` (normalized) of set `set_id`, keyed with `key` (its id and
/// derived server key) when given.
pub fn hash(set_id: &[u8; 16], code: &str, key: Option<(&str, &[u8; 32])>) -> String {
    match key {
        Some((id, k)) => {
            let mut m = <Hmac<Sha256> as KeyInit>::new_from_slice(k).expect("HMAC takes any key length");
            m.update(set_id);
            m.update(code.as_bytes());
            format!("r2${id}${}", hex(&m.finalize().into_bytes()))
        }
        None => {
            let mut h = Sha256::new();
            h.update(b"mfa_auth recovery code");
            h.update(set_id);
            h.update(code.as_bytes());
            format!("r1${}", hex(&h.finalize()))
        }
    }
}

/// Constant-time equality of two stored hashes.
pub fn same(a: &str, b: &str) -> bool {
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_16_alphabet_characters_and_differ() {
        let codes: Vec<String> = (0..200).map(|_| generate().unwrap()).collect();
        for c in &codes {
            assert_eq!(c.len(), CODE_CHARS);
            assert!(c.bytes().all(|b| ALPHABET.contains(&b)), "{c}");
        }
        let mut unique = codes.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), codes.len());
        // Every character of the alphabet turns up (3 200 draws of 32: missing one has
        // probability below 1e-40).
        let seen: std::collections::HashSet<u8> = codes.iter().flat_map(|c| c.bytes()).collect();
        assert_eq!(seen.len(), 32);
        // 16 characters of 32 = 80 bits.
        assert_eq!(CODE_CHARS as f64 * (ALPHABET.len() as f64).log2(), 80.0);
    }

    #[test]
    fn grouped_and_read_back() {
        assert_eq!(grouped("7kq4m2xp9dwej3ab"), "7kq4-m2xp-9dwe-j3ab");
        for input in ["7kq4-m2xp-9dwe-j3ab", "7KQ4 M2XP 9DWE J3AB", " 7kq4m2xp9dwej3ab ", "7kq4-m2xp-9dwe-j3ab\t"] {
            assert_eq!(normalize(input).as_deref(), Some("7kq4m2xp9dwej3ab"), "{input:?}");
        }
        // Crockford's readings: i/l -> 1, o -> 0.
        assert_eq!(normalize("7kq4-m2xp-9dwe-j3aI").as_deref(), Some("7kq4m2xp9dwej3a1"));
        assert_eq!(normalize("O000-0000-0000-000L").as_deref(), Some("0000000000000001"));
        for bad in [
            "",
            "7kq4-m2xp-9dwe-j3a",
            "7kq4-m2xp-9dwe-j3abc",
            "7kq4-m2xp-9dwe-j3a!",
            "7kq4-m2xp-9dwe-j3aü",
            "7kq4-m2xp-9dwe-j3au",
        ] {
            assert_eq!(normalize(bad), None, "{bad:?}");
        }
        assert_eq!(normalize(&"-".repeat(MAX_INPUT + 1)), None);
    }

    #[test]
    fn hashes_are_bound_to_set_and_key() {
        let (a, b) = ([1u8; 16], [2u8; 16]);
        let code = "7kq4m2xp9dwej3ab";
        let plain = hash(&a, code, None);
        assert!(plain.starts_with("r1$") && plain.len() == 3 + 64);
        assert_ne!(plain, hash(&b, code, None), "bound to the set");
        assert_ne!(plain, hash(&a, "7kq4m2xp9dwej3ac", None));
        let k1 = [7u8; 32];
        let keyed = hash(&a, code, Some(("k1", &k1)));
        assert!(keyed.starts_with("r2$k1$"));
        assert_ne!(keyed, hash(&a, code, Some(("k1", &[8u8; 32]))), "bound to the key");
        assert!(!keyed.contains(code) && !plain.contains(code));
        assert!(same(&keyed, &hash(&a, code, Some(("k1", &k1)))));
        assert!(!same(&keyed, &plain));
    }
}
