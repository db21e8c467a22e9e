//! Phone (SMS) factors: a challenge makes a random code to send, and the row keeps only its
//! hash, keyed with a server key when a master key is configured (mfa_auth_core::code_hash).

use pgrx::datum::DatumWithOid;
use pgrx::spi::SpiClient;

use super::{code, Checked, FactorKind, FactorRow, Issued, Response};
use crate::factor_kinds::record::{challenge_success, factor_failure};
use crate::factor_kinds::row::Locked;
use crate::otp::hotp::normalize_code;
use crate::otp::secret;
use crate::pg::error::{raise, MfaError, OrRaise};
use crate::pg::spi::{run, Stmt};
use mfa_auth_core::code_hash::{self, hash_code, verify_code_hash};

/// Digits of an SMS code.
pub const CODE_DIGITS: u32 = 6;

/// Success, on either schema: the factor's other open challenges are closed (deleted): their
/// codes were sent, and must not stay usable.
const SUCCEED: Stmt = challenge_success!(
    ", closed AS (
              DELETE FROM auth.mfa_challenges
               WHERE factor_id = $2 AND id <> $1 AND verified_at IS NULL
          )",
    ""
);
/// Failure: counted on the factor (`$6` unused).
const FAIL: Stmt = factor_failure!("");

pub struct Phone;

impl FactorKind for Phone {
    fn issue(&self, _: &mut SpiClient<'_>, _: &FactorRow, resend_too_soon: bool) -> Issued {
        if resend_too_soon {
            raise(MfaError::ResendTooSoon(crate::settings::phone_resend_interval()));
        }
        let code = secret::random_digits(CODE_DIGITS).or_raise();
        let key = crate::secrets::phone_code_key();
        let stored = hash_code(&code, key.as_ref().map(|(id, k)| (id.as_str(), k))).or_raise();
        Issued { code: Some(code), stored: Some(stored), ..Issued::default() }
    }

    fn check(&self, _: &mut SpiClient<'_>, row: &Locked, response: &Response<'_>) -> Checked {
        let ok = match (row.otp_code.as_deref(), normalize_code(code(response), CODE_DIGITS)) {
            (Some(stored), Some(given)) => {
                // A missing key is an error (55000), never a wrong code.
                let key = code_hash::key_id_of(stored).map(crate::secrets::phone_code_key_of);
                verify_code_hash(stored, given.as_str(), key.as_ref())
            }
            _ => false,
        };
        Checked { ok, ..Checked::wrong() }
    }

    fn succeed(&self, client: &mut SpiClient<'_>, args: &[DatumWithOid<'_>]) {
        run(client, &SUCCEED, args);
    }

    fn fail(&self, client: &mut SpiClient<'_>, args: &[DatumWithOid<'_>]) {
        run(client, &FAIL, args);
    }
}
