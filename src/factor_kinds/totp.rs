//! TOTP factors (RFC 6238): nothing is sent; a response is a code of the factor's secret
//! within mfa_auth.totp_window steps, and a step is never accepted twice (§5.2).

use pgrx::datum::DatumWithOid;
use pgrx::spi::SpiClient;

use super::{code, Checked, FactorKind, FactorRow, Issued, Response};
use crate::factor_kinds::record::{challenge_success, factor_failure};
use crate::factor_kinds::row::Locked;
use crate::otp::hotp::verify_totp;
use crate::otp::{base32, Algorithm, OtpParams};
use crate::pg::clock;
use crate::pg::error::OrRaise;
use crate::pg::spi::{run, Stmt};

/// Success, on either schema: only the shared parts.
const SUCCEED: Stmt = challenge_success!("", "");
/// Failure: counted on the factor (`$6` unused).
const FAIL: Stmt = factor_failure!("");

pub struct Totp;

impl FactorKind for Totp {
    fn issue(&self, _: &mut SpiClient<'_>, _: &FactorRow, _: bool) -> Issued {
        Issued::default()
    }

    fn check(&self, _: &mut SpiClient<'_>, row: &Locked, response: &Response<'_>) -> Checked {
        let code = code(response);
        let Some(stored) = row.secret.as_deref() else { return Checked::wrong() };
        // A key problem is an error, never a wrong code.
        let (secret, resealed) = crate::secrets::open_stored(&row.factor_id, stored);
        let algorithm = Algorithm::parse(&row.totp_algorithm).or_raise();
        let key = base32::decode_key(&secret).or_raise();
        let params = OtpParams::new(algorithm, i64::from(row.totp_digits), i64::from(row.totp_period)).or_raise();
        let window = u32::try_from(crate::settings::totp_window()).unwrap_or(1);
        let matched = verify_totp(&key, code, clock::now_us() / 1_000_000, window, &params).or_raise();
        let step = matched.map(|s| i64::try_from(s).unwrap_or(i64::MAX));
        match (step, row.last_totp_step) {
            // RFC 6238 §5.2: a step at or before the last accepted one is a replay.
            (Some(step), Some(last)) if step <= last => Checked { resealed, replay: true, ..Checked::wrong() },
            (Some(step), _) => Checked { ok: true, step: Some(step), resealed, ..Checked::wrong() },
            (None, _) => Checked { resealed, ..Checked::wrong() },
        }
    }

    fn succeed(&self, client: &mut SpiClient<'_>, args: &[DatumWithOid<'_>]) {
        run(client, &SUCCEED, args);
    }

    fn fail(&self, client: &mut SpiClient<'_>, args: &[DatumWithOid<'_>]) {
        run(client, &FAIL, args);
    }
}
