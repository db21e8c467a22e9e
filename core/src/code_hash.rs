//! Hashing of one-time codes that must be stored (SMS challenges), never the code:
//!
//! - `v2$<key id>$<hex salt>$<hex HMAC-SHA256(server key, salt || code)>` when a master key is
//!   configured: the server key is derived from master key `<key id>` (HKDF, see
//!   [`crate::sealing::Keyring::derived`]), so a row alone (a dump, a replica, a log) cannot be
//!   checked against the 10^6 possible codes; the key id lets a rotation keep open
//!   challenges verifiable while the old key is still listed.
//! - `v1$<hex salt>$<hex HMAC-SHA256(salt, code)>` without a key (and from 0.1.0): the code
//!   never sits in the table in clear, but with only 10^6 codes the row alone gives it away
//!   to anyone who tries them all (about a second).
//!
//! The row is also unreadable by ordinary roles and expires within minutes.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::otp::{secret, OtpError};

const PREFIX: &str = "v1$";
const PREFIX_KEYED: &str = "v2$";

/// HMAC-SHA256 over the concatenation of `parts`.
fn mac(key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    let mut m = <Hmac<Sha256> as KeyInit>::new_from_slice(key).expect("HMAC takes any key length");
    for p in parts {
        m.update(p);
    }
    m.finalize().into_bytes().to_vec()
}

fn hex(bytes: &[u8]) -> String {
    const H: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(H[(b >> 4) as usize] as char);
        s.push(H[(b & 15) as usize] as char);
    }
    s
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok()).collect()
}

/// Hashes `code` with a fresh 16-byte random salt, keyed with `key` = (key id, server key)
/// when one is given (`v2`), else unkeyed (`v1`).
pub fn hash_code(code: &str, key: Option<(&str, &[u8; 32])>) -> Result<String, OtpError> {
    let mut salt = [0u8; 16];
    secret::random_bytes(&mut salt)?;
    Ok(match key {
        Some((id, key)) => format!("{PREFIX_KEYED}{id}${}${}", hex(&salt), hex(&mac(key, &[&salt, code.as_bytes()]))),
        None => format!("{PREFIX}{}${}", hex(&salt), hex(&mac(&salt, &[code.as_bytes()]))),
    })
}

/// The key id a keyed (`v2`) hash was made with.
pub fn key_id_of(stored: &str) -> Option<&str> {
    stored.strip_prefix(PREFIX_KEYED)?.split('$').next()
}

/// Whether `code` hashes to `stored`, compared in constant time. `key` is the server key
/// of the id the stored value names ([`key_id_of`]), for a `v2` value. A malformed value,
/// or a `v2` value without its key, never matches.
pub fn verify_code_hash(stored: &str, code: &str, key: Option<&[u8; 32]>) -> bool {
    let expected = if let Some(rest) = stored.strip_prefix(PREFIX) {
        let Some((salt, digest)) = rest.split_once('$') else { return false };
        let Some(salt) = unhex(salt) else { return false };
        (mac(&salt, &[code.as_bytes()]), digest)
    } else if let Some(rest) = stored.strip_prefix(PREFIX_KEYED) {
        let (Some(key), Some((_, rest))) = (key, rest.split_once('$')) else { return false };
        let Some((salt, digest)) = rest.split_once('$') else { return false };
        let Some(salt) = unhex(salt) else { return false };
        (mac(key, &[&salt, code.as_bytes()]), digest)
    } else {
        return false;
    };
    let (mac, digest) = expected;
    let Some(digest) = unhex(digest) else { return false };
    bool::from(mac.ct_eq(&digest))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_salted() {
        let a = hash_code("123456", None).unwrap();
        let b = hash_code("123456", None).unwrap();
        assert_ne!(a, b, "salted");
        assert!(a.starts_with("v1$") && !a.contains("123456"));
        assert!(verify_code_hash(&a, "123456", None));
        assert!(!verify_code_hash(&a, "123457", None));
        assert!(!verify_code_hash("123456", "123456", None));
        assert!(!verify_code_hash("v1$zz$00", "123456", None));
        assert!(!verify_code_hash("v1$", "", None));
    }

    #[test]
    fn keyed_hashes_need_their_key() {
        let (k1, k2) = ([7u8; 32], [8u8; 32]);
        let h = hash_code("123456", Some(("k1", &k1))).unwrap();
        assert!(h.starts_with("v2$k1$") && !h.contains("123456"));
        assert_eq!(key_id_of(&h), Some("k1"));
        assert!(verify_code_hash(&h, "123456", Some(&k1)));
        assert!(!verify_code_hash(&h, "123457", Some(&k1)));
        assert!(!verify_code_hash(&h, "123456", Some(&k2)));
        assert!(!verify_code_hash(&h, "123456", None));
        // Without the key, trying every code against the row finds nothing.
        let salt = h.split('$').nth(2).unwrap();
        let digest = h.split('$').nth(3).unwrap();
        let unkeyed = format!("v1${salt}${digest}");
        assert!(!verify_code_hash(&unkeyed, "123456", None));
        assert_eq!(key_id_of("v1$00$00"), None);
    }
}
