//! Phone (SMS) factors: a challenge makes a random code to send, and the row keeps only its
//! hash, keyed with a server key when a master key is configured (otp::code_hash).

use super::{Checked, Issued};
use crate::challenges::Locked;
use crate::error::{raise, MfaError, OrRaise};
use crate::otp::code_hash::{self, hash_code, verify_code_hash};
use crate::otp::hotp::normalize_code;
use crate::otp::secret;
use crate::{guc, secrets};

/// Digits of an SMS code.
pub const CODE_DIGITS: u32 = 6;

pub fn issue(resend_too_soon: bool) -> Issued {
    if resend_too_soon {
        raise(MfaError::ResendTooSoon(guc::PHONE_RESEND_INTERVAL.get()));
    }
    let code = secret::random_digits(CODE_DIGITS).or_raise();
    let key = secrets::phone_code_key();
    let stored = hash_code(&code, key.as_ref().map(|(id, k)| (id.as_str(), k))).or_raise();
    Issued { code: Some(code), stored: Some(stored), ..Issued::default() }
}

pub fn check(row: &Locked, code: &str) -> Checked {
    let ok = match (row.otp_code.as_deref(), normalize_code(code, CODE_DIGITS)) {
        (Some(stored), Some(given)) => {
            // A missing key is an error (55000), never a wrong code.
            let key = code_hash::key_id_of(stored).map(secrets::phone_code_key_of);
            verify_code_hash(stored, given.as_str(), key.as_ref())
        }
        _ => false,
    };
    Checked { ok, ..Checked::wrong() }
}
