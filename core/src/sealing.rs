//! TOTP secrets encrypted at rest: AES-256-GCM with a per-row key.
//!
//! - Master keys come from a keyring text, `key_id:base64-of-32-bytes[,key_id:...]`; the
//!   first key is the current one (new secrets are sealed with it), the others can still
//!   open what they sealed, so keys can be rotated without downtime.
//! - Each row gets its own key: HKDF-SHA256 (RFC 5869) of the master key, with the
//!   factor id as `info`. A sealed value copied onto another factor's row does not open.
//! - A sealed value describes itself: `mfa1:<key_id>:<nonce>:<ciphertext+tag>` (nonce and
//!   ciphertext in unpadded base64url; the nonce is 96 random bits). The prefix and key id
//!   are authenticated as associated data. A base32 secret never contains ':', so a
//!   value without the prefix is a legacy plaintext secret.
//!
//! Pure Rust, no pgrx. Errors never contain key material or secrets.

use std::fmt;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Key};
use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE_NO_PAD};
use base64::Engine;
use hkdf::Hkdf;
use sha2::Sha256;

use crate::otp::OtpError;

/// Version prefix of a sealed value.
pub const PREFIX: &str = "mfa1:";
/// Bytes of a master key.
pub const KEY_BYTES: usize = 32;
/// Bytes of a nonce.
pub const NONCE_BYTES: usize = 12;
const HKDF_SALT: &[u8] = b"mfa_auth totp secret v1";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SealError {
    /// The keyring text is malformed: which entry (1-based) and why. Never the key itself.
    Keyring { entry: usize, reason: &'static str },
    /// Sealing needs a key and the keyring is empty.
    NoKey,
    /// The stored value has the prefix but not the layout.
    Malformed,
    /// Sealed with a key id that the keyring does not hold.
    UnknownKey(String),
    /// The OS random number generator failed (no nonce).
    Random(OtpError),
    /// The key with that id does not open the value: a different key under the same id,
    /// a value moved to another row, or a tampered value.
    WrongKey(String),
}

impl fmt::Display for SealError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SealError::Keyring { entry, reason } => write!(f, "entry {entry}: {reason}"),
            SealError::NoKey => write!(f, "no encryption key is configured"),
            SealError::Random(e) => write!(f, "{e}"),
            SealError::Malformed => write!(f, "the stored value is not a well-formed sealed secret"),
            SealError::UnknownKey(id) => write!(f, "it was encrypted with key \"{id}\", which is not configured"),
            SealError::WrongKey(id) => {
                write!(f, "key \"{id}\" does not decrypt it (a different key under that id, or a tampered value)")
            }
        }
    }
}

impl std::error::Error for SealError {}

/// Master keys, the current (first) one first.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Keyring {
    keys: Vec<(String, [u8; KEY_BYTES])>,
}

impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Ids only: a keyring must never print its keys.
        f.debug_list().entries(self.keys.iter().map(|(id, _)| id)).finish()
    }
}

fn valid_key_id(id: &str) -> bool {
    (1..=32).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// Standard or URL-safe base64, padded or not.
fn decode_key(text: &str) -> Option<Vec<u8>> {
    let normal: String = text
        .trim_end_matches('=')
        .chars()
        .map(|c| match c {
            '-' => '+',
            '_' => '/',
            c => c,
        })
        .collect();
    STANDARD_NO_PAD.decode(normal).ok()
}

impl Keyring {
    /// Parses `key_id:base64[,key_id:base64...]`; blank text is an empty keyring.
    pub fn parse(text: &str) -> Result<Keyring, SealError> {
        let mut keys: Vec<(String, [u8; KEY_BYTES])> = Vec::new();
        if text.trim().is_empty() {
            return Ok(Keyring { keys });
        }
        for (n, entry) in text.split(',').enumerate() {
            let err = |reason| SealError::Keyring { entry: n + 1, reason };
            let Some((id, key)) = entry.trim().split_once(':') else {
                return Err(err("expected key_id:base64-key"));
            };
            let id = id.trim();
            if !valid_key_id(id) {
                return Err(err("a key id is 1 to 32 letters, digits, '_' or '-'"));
            }
            let bytes = decode_key(key.trim()).ok_or_else(|| err("the key is not valid base64"))?;
            let key: [u8; KEY_BYTES] =
                bytes.try_into().map_err(|_| err("a key must be exactly 32 bytes (44 base64 characters)"))?;
            if keys.iter().any(|(k, _)| k == id) {
                return Err(err("the key id appears twice"));
            }
            keys.push((id.to_owned(), key));
        }
        Ok(Keyring { keys })
    }

    /// Parses a key file: one `key_id:base64` per line, the current key first; blank lines
    /// and lines starting with `#` are ignored. Errors name the line, never the key.
    pub fn parse_file(text: &str) -> Result<Keyring, SealError> {
        let mut ring = Keyring::default();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let one = Keyring::parse(line).map_err(|e| match e {
                SealError::Keyring { reason, .. } => SealError::Keyring { entry: n + 1, reason },
                other => other,
            })?;
            if one.keys.len() != 1 {
                return Err(SealError::Keyring { entry: n + 1, reason: "one key_id:base64-key per line" });
            }
            if ring.key(&one.keys[0].0).is_some() {
                return Err(SealError::Keyring { entry: n + 1, reason: "the key id appears twice" });
            }
            ring.keys.extend(one.keys);
        }
        Ok(ring)
    }

    /// This keyring followed by the keys of `older` whose ids it does not have (they can
    /// still open what they sealed; the current key stays this keyring's first).
    pub fn followed_by(mut self, older: &Keyring) -> Keyring {
        for (id, key) in &older.keys {
            if self.key(id).is_none() {
                self.keys.push((id.clone(), *key));
            }
        }
        self
    }

    /// A key for another purpose than sealing secrets, derived from master key `id` (the
    /// current one when None) by HKDF-SHA256 with `purpose` as info: (key id, key).
    pub fn derived(&self, id: Option<&str>, purpose: &[u8]) -> Option<(&str, [u8; KEY_BYTES])> {
        let (id, master) = match id {
            Some(id) => self.keys.iter().find(|(k, _)| k == id)?,
            None => self.keys.first()?,
        };
        let mut out = [0u8; KEY_BYTES];
        Hkdf::<Sha256>::new(Some(b"mfa_auth derived key v1"), master)
            .expand(purpose, &mut out)
            .expect("32 bytes is a valid HKDF-SHA256 length");
        Some((id.as_str(), out))
    }

    /// The ids of the configured keys, the current one first.
    pub fn ids(&self) -> impl Iterator<Item = &str> {
        self.keys.iter().map(|(id, _)| id.as_str())
    }

    /// The id of the key new secrets are sealed with.
    pub fn current(&self) -> Option<&str> {
        self.keys.first().map(|(id, _)| id.as_str())
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    fn key(&self, id: &str) -> Option<&[u8; KEY_BYTES]> {
        self.keys.iter().find(|(k, _)| k == id).map(|(_, key)| key)
    }
}

/// The AES-256-GCM key of one row: HKDF-SHA256(salt, master, info = factor id).
pub fn row_key(master: &[u8; KEY_BYTES], factor_id: &[u8; 16]) -> [u8; KEY_BYTES] {
    let mut out = [0u8; KEY_BYTES];
    Hkdf::<Sha256>::new(Some(HKDF_SALT), master)
        .expand(factor_id, &mut out)
        .expect("32 bytes is a valid HKDF-SHA256 length");
    out
}

fn aad(key_id: &str) -> Vec<u8> {
    [PREFIX.as_bytes(), key_id.as_bytes()].concat()
}

/// Whether `stored` is a sealed value (else it is a legacy plaintext secret).
pub fn is_sealed(stored: &str) -> bool {
    stored.starts_with(PREFIX)
}

/// The key id a sealed value names.
pub fn key_id_of(stored: &str) -> Option<&str> {
    stored.strip_prefix(PREFIX)?.split(':').next()
}

/// Seals `secret` for `factor_id` with the current key and the given nonce (which must
/// never repeat under one key: pass fresh random bytes, see [`seal_random`]).
pub fn seal(ring: &Keyring, factor_id: &[u8; 16], secret: &str, nonce: [u8; NONCE_BYTES]) -> Result<String, SealError> {
    let (id, master) = ring.keys.first().ok_or(SealError::NoKey)?;
    let cipher = Aes256Gcm::new(&Key::<Aes256Gcm>::from(row_key(master, factor_id)));
    let aad = aad(id);
    let ct = cipher
        .encrypt(&nonce.into(), Payload { msg: secret.as_bytes(), aad: &aad })
        .expect("AES-GCM encryption of a short message cannot fail");
    Ok(format!("{PREFIX}{id}:{}:{}", URL_SAFE_NO_PAD.encode(nonce), URL_SAFE_NO_PAD.encode(ct)))
}

/// [`seal`] with a nonce from the OS CSPRNG.
pub fn seal_random(ring: &Keyring, factor_id: &[u8; 16], secret: &str) -> Result<String, SealError> {
    let mut nonce = [0u8; NONCE_BYTES];
    crate::otp::secret::random_bytes(&mut nonce).map_err(SealError::Random)?;
    seal(ring, factor_id, secret, nonce)
}

/// An opened stored secret.
#[derive(Debug, PartialEq, Eq)]
pub struct Opened {
    pub secret: String,
    /// False when the value should be sealed again: it is plaintext while a key is
    /// configured, or sealed with a key other than the current one.
    pub current: bool,
}

/// Opens a stored secret of `factor_id`: a sealed value with the key it names, or a
/// legacy plaintext value as it is.
pub fn open(ring: &Keyring, factor_id: &[u8; 16], stored: &str) -> Result<Opened, SealError> {
    let Some(rest) = stored.strip_prefix(PREFIX) else {
        return Ok(Opened { secret: stored.to_owned(), current: ring.is_empty() });
    };
    let mut parts = rest.split(':');
    let (Some(id), Some(nonce), Some(ct), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return Err(SealError::Malformed);
    };
    let nonce: [u8; NONCE_BYTES] =
        URL_SAFE_NO_PAD.decode(nonce).ok().and_then(|n| n.try_into().ok()).ok_or(SealError::Malformed)?;
    let ct = URL_SAFE_NO_PAD.decode(ct).map_err(|_| SealError::Malformed)?;
    let master = ring.key(id).ok_or_else(|| SealError::UnknownKey(id.to_owned()))?;
    let cipher = Aes256Gcm::new(&Key::<Aes256Gcm>::from(row_key(master, factor_id)));
    let aad = aad(id);
    let plain = cipher
        .decrypt(&nonce.into(), Payload { msg: &ct, aad: &aad })
        .map_err(|_| SealError::WrongKey(id.to_owned()))?;
    let secret = String::from_utf8(plain).map_err(|_| SealError::Malformed)?;
    Ok(Opened { secret, current: ring.current() == Some(id) })
}

#[cfg(test)]
mod tests {
    use super::*;

    const K1: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="; // bytes 0..32
    const K2: &str = "ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8="; // bytes 32..64
    const SECRET: &str = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP";
    const F: [u8; 16] = [7; 16];

    fn ring(text: &str) -> Keyring {
        Keyring::parse(text).unwrap()
    }

    #[test]
    fn hkdf_matches_rfc5869_test_case_1() {
        let ikm = [0x0b; 22];
        let salt: Vec<u8> = (0..=0x0c).collect();
        let info: Vec<u8> = (0xf0..=0xf9).collect();
        let mut okm = [0u8; 42];
        Hkdf::<Sha256>::new(Some(&salt), &ikm).expand(&info, &mut okm).unwrap();
        let hex: String = okm.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865");
    }

    #[test]
    fn seal_then_open_round_trips_and_hides_the_secret() {
        let r = ring(&format!("k1:{K1}"));
        let sealed = seal(&r, &F, SECRET, [9; 12]).unwrap();
        assert!(sealed.starts_with("mfa1:k1:CQkJCQkJCQkJCQkJ:"), "{sealed}");
        assert!(!sealed.contains(SECRET));
        assert_eq!(open(&r, &F, &sealed).unwrap(), Opened { secret: SECRET.into(), current: true });
        assert_eq!(key_id_of(&sealed), Some("k1"));
    }

    #[test]
    fn random_nonces_differ() {
        let r = ring(&format!("k1:{K1}"));
        assert_ne!(seal_random(&r, &F, SECRET).unwrap(), seal_random(&r, &F, SECRET).unwrap());
    }

    #[test]
    fn an_old_key_still_opens_and_asks_for_resealing() {
        let old = ring(&format!("k1:{K1}"));
        let sealed = seal(&old, &F, SECRET, [1; 12]).unwrap();
        let rotated = ring(&format!("k2:{K2}, k1:{K1}"));
        assert_eq!(rotated.current(), Some("k2"));
        assert_eq!(open(&rotated, &F, &sealed).unwrap(), Opened { secret: SECRET.into(), current: false });
    }

    #[test]
    fn plaintext_is_read_as_is_and_is_current_only_without_keys() {
        assert_eq!(open(&Keyring::default(), &F, SECRET).unwrap(), Opened { secret: SECRET.into(), current: true });
        assert!(!open(&ring(&format!("k1:{K1}")), &F, SECRET).unwrap().current);
    }

    #[test]
    fn wrong_key_unknown_key_other_row_and_tampering_are_errors() {
        let sealed = seal(&ring(&format!("k1:{K1}")), &F, SECRET, [1; 12]).unwrap();
        assert_eq!(open(&ring(&format!("k1:{K2}")), &F, &sealed), Err(SealError::WrongKey("k1".into())));
        assert_eq!(open(&ring(&format!("k2:{K2}")), &F, &sealed), Err(SealError::UnknownKey("k1".into())));
        assert_eq!(open(&Keyring::default(), &F, &sealed), Err(SealError::UnknownKey("k1".into())));
        assert_eq!(open(&ring(&format!("k1:{K1}")), &[8; 16], &sealed), Err(SealError::WrongKey("k1".into())));
        // Flip one ciphertext character.
        let mut t = sealed.clone().into_bytes();
        let last = t.len() - 3;
        t[last] = if t[last] == b'A' { b'B' } else { b'A' };
        let t = String::from_utf8(t).unwrap();
        assert_eq!(open(&ring(&format!("k1:{K1}")), &F, &t), Err(SealError::WrongKey("k1".into())));
        // Relabelling the key id breaks the associated data even when that key is configured.
        let relabelled = sealed.replacen("mfa1:k1:", "mfa1:k2:", 1);
        assert_eq!(open(&ring(&format!("k2:{K1}")), &F, &relabelled), Err(SealError::WrongKey("k2".into())));
    }

    #[test]
    fn malformed_sealed_values() {
        let r = ring(&format!("k1:{K1}"));
        for bad in [
            "mfa1:",
            "mfa1:k1",
            "mfa1:k1:AAAA:AAAA",
            "mfa1:k1:CQkJCQkJCQkJCQkJ",
            "mfa1:k1:!!:AA",
            "mfa1:k1:CQkJCQkJCQkJCQkJ:AA:x",
        ] {
            assert_eq!(open(&r, &F, bad), Err(SealError::Malformed), "{bad}");
        }
    }

    #[test]
    fn keyring_parsing() {
        assert!(Keyring::parse("").unwrap().is_empty());
        assert!(Keyring::parse("  ").unwrap().is_empty());
        let r = ring(&format!(" a-1 : {K1} ,b_2:{}", K2.trim_end_matches('=').replace('/', "_").replace('+', "-")));
        assert_eq!(r.current(), Some("a-1"));
        assert_eq!(format!("{r:?}"), r#"["a-1", "b_2"]"#);
        let e = |t: &str| Keyring::parse(t).unwrap_err().to_string();
        assert_eq!(e("k1"), "entry 1: expected key_id:base64-key");
        assert_eq!(e(&format!("k1:{K1},:{K2}")), "entry 2: a key id is 1 to 32 letters, digits, '_' or '-'");
        assert_eq!(e("k1:AAAA"), "entry 1: a key must be exactly 32 bytes (44 base64 characters)");
        assert_eq!(e("k1:@@@@"), "entry 1: the key is not valid base64");
        assert_eq!(e(&format!("k1:{K1},k1:{K2}")), "entry 2: the key id appears twice");
        assert_eq!(e(&format!("k1:{K1},")), "entry 2: expected key_id:base64-key");
        // No error message ever carries the key text.
        assert!(!e(&format!("k1:{K1}x")).contains(K1));
    }

    #[test]
    fn key_files() {
        let k1 = "k1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
        let k2 = "k2:AQECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
        let file = Keyring::parse_file(&format!("# current first\n{k2}\n\n  {k1}  \n")).unwrap();
        assert_eq!(file.current(), Some("k2"));
        assert_eq!(file, ring(&format!("{k2},{k1}")));
        assert_eq!(
            Keyring::parse_file(&format!("{k1}\nk3:short\n")),
            Err(SealError::Keyring { entry: 2, reason: "the key is not valid base64" })
        );
        assert!(matches!(Keyring::parse_file(&format!("{k1},{k2}")), Err(SealError::Keyring { entry: 1, .. })));
        assert!(matches!(Keyring::parse_file(&format!("{k1}\n{k1}")), Err(SealError::Keyring { entry: 2, .. })));
        assert!(Keyring::parse_file("# nothing\n\n").unwrap().is_empty());
        // The legacy setting's keys follow the file's; the file's current key stays current.
        let merged = ring(k2).followed_by(&ring(&format!("{k1},{k2}")));
        assert_eq!(merged, ring(&format!("{k2},{k1}")));
    }

    #[test]
    fn derived_keys_differ_by_purpose_and_master() {
        let r = ring("k1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=,k2:AQECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=");
        let (id, a) = r.derived(None, b"phone").unwrap();
        assert_eq!(id, "k1");
        assert_ne!(a, r.derived(None, b"other").unwrap().1);
        assert_ne!(a, r.derived(Some("k2"), b"phone").unwrap().1);
        assert_eq!(a, r.derived(Some("k1"), b"phone").unwrap().1);
        assert!(r.derived(Some("k9"), b"phone").is_none());
        assert!(Keyring::default().derived(None, b"phone").is_none());
    }

    #[test]
    fn sealing_needs_a_key() {
        assert_eq!(seal(&Keyring::default(), &F, SECRET, [0; 12]), Err(SealError::NoKey));
    }
}
