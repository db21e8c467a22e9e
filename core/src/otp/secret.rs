//! New shared secrets from the operating system's CSPRNG.

use super::{invalid, OtpError};

pub const DEFAULT_SECRET_BYTES: usize = 20;
pub const MIN_SECRET_BYTES: i64 = 10;
pub const MAX_SECRET_BYTES: i64 = 128;

/// Fills `buf` from the OS CSPRNG (getrandom(2) on Linux).
pub fn random_bytes(buf: &mut [u8]) -> Result<(), OtpError> {
    getrandom::fill(buf).map_err(|e| OtpError::RandomSource(e.to_string()))
}

/// A new random secret of `bytes` bytes (10..=128; RFC 4226 asks for at least
/// 128 bits and recommends 160), base32 encoded without padding.
pub fn generate(bytes: i64) -> Result<String, OtpError> {
    if !(MIN_SECRET_BYTES..=MAX_SECRET_BYTES).contains(&bytes) {
        return Err(invalid(
            "bytes",
            format!("must be between {MIN_SECRET_BYTES} and {MAX_SECRET_BYTES}, got {bytes}"),
        ));
    }
    let mut buf = vec![0u8; bytes as usize];
    random_bytes(&mut buf)?;
    Ok(super::base32::encode(&buf))
}

/// A uniformly random decimal code of `digits` digits (for SMS challenges).
pub fn random_digits(digits: u32) -> Result<String, OtpError> {
    let m = 10u64.pow(digits);
    // Rejection sampling: no modulo bias.
    let limit = u64::MAX - (u64::MAX % m);
    loop {
        let mut b = [0u8; 8];
        random_bytes(&mut b)?;
        let v = u64::from_le_bytes(b);
        if v < limit {
            return Ok(format!("{:0width$}", v % m, width = digits as usize));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_fresh_and_sized() {
        let a = generate(20).unwrap();
        let b = generate(20).unwrap();
        assert_ne!(a, b);
        assert_eq!(a.len(), 32);
        assert_eq!(crate::otp::base32::decode(&a).unwrap().len(), 20);
        assert_eq!(crate::otp::base32::decode(&generate(64).unwrap()).unwrap().len(), 64);
        assert!(generate(9).is_err());
        assert!(generate(129).is_err());
    }

    #[test]
    fn random_digits_have_the_right_shape() {
        for d in 6..=10 {
            let c = random_digits(d).unwrap();
            assert_eq!(c.len(), d as usize);
            assert!(c.bytes().all(|b| b.is_ascii_digit()));
        }
    }
}
