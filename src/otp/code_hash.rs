//! Hashing of one-time codes that must be stored (SMS challenges): the table keeps
//! `v1$<hex salt>$<hex HMAC-SHA256(salt, code)>`, never the code.
//!
//! A 6-digit code has only 10^6 values, so no hash makes a leaked row safe on its
//! own; what the hash buys is that the code never appears in the table, in dumps or
//! in logs, and the random salt defeats precomputed tables across rows. The row is
//! also unreadable by ordinary roles and expires within minutes.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use super::{secret, OtpError};

const PREFIX: &str = "v1$";

fn mac(salt: &[u8], code: &str) -> Vec<u8> {
    let mut m = <Hmac<Sha256> as KeyInit>::new_from_slice(salt).expect("HMAC takes any key length");
    m.update(code.as_bytes());
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
    if s.len() % 2 != 0 {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

/// Hashes `code` with a fresh 16-byte random salt.
pub fn hash_code(code: &str) -> Result<String, OtpError> {
    let mut salt = [0u8; 16];
    secret::random_bytes(&mut salt)?;
    Ok(format!("{PREFIX}{}${}", hex(&salt), hex(&mac(&salt, code))))
}

/// Whether `code` hashes to `stored`, compared in constant time. A malformed
/// stored value never matches.
pub fn verify_code_hash(stored: &str, code: &str) -> bool {
    let Some(rest) = stored.strip_prefix(PREFIX) else { return false };
    let Some((salt, digest)) = rest.split_once('$') else { return false };
    let (Some(salt), Some(digest)) = (unhex(salt), unhex(digest)) else { return false };
    bool::from(mac(&salt, code).ct_eq(&digest))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_salted() {
        let a = hash_code("123456").unwrap();
        let b = hash_code("123456").unwrap();
        assert_ne!(a, b, "salted");
        assert!(!a.contains("123456"));
        assert!(verify_code_hash(&a, "123456"));
        assert!(!verify_code_hash(&a, "123457"));
        assert!(!verify_code_hash("123456", "123456"));
        assert!(!verify_code_hash("v1$zz$00", "123456"));
        assert!(!verify_code_hash("v1$", ""));
    }
}
