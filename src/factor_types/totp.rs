//! TOTP factors (RFC 6238): nothing is sent; a response is a code of the factor's secret
//! within mfa_auth.totp_window steps, and a step is never accepted twice (§5.2).

use super::Checked;
use crate::challenges::Locked;
use crate::error::OrRaise;
use crate::otp::hotp::verify_totp;
use crate::otp::{base32, Algorithm, OtpParams};
use crate::{clock, guc, secrets};

pub fn check(row: &Locked, code: &str) -> Checked {
    let Some(stored) = row.secret.as_deref() else { return Checked::wrong() };
    // A key problem is an error, never a wrong code.
    let (secret, resealed) = secrets::open_stored(&row.factor_id, stored);
    let algorithm = Algorithm::parse(&row.totp_algorithm).or_raise();
    let key = base32::decode_key(&secret).or_raise();
    let params = OtpParams::new(algorithm, i64::from(row.totp_digits), i64::from(row.totp_period)).or_raise();
    let window = u32::try_from(guc::TOTP_WINDOW.get()).unwrap_or(1);
    let matched = verify_totp(&key, code, clock::now_us() / 1_000_000, window, &params).or_raise();
    let step = matched.map(|s| i64::try_from(s).unwrap_or(i64::MAX));
    match (step, row.last_totp_step) {
        // RFC 6238 §5.2: a step at or before the last accepted one is a replay.
        (Some(step), Some(last)) if step <= last => Checked { resealed, replay: true, ..Checked::wrong() },
        (Some(step), _) => Checked { ok: true, step: Some(step), resealed, ..Checked::wrong() },
        (None, _) => Checked { resealed, ..Checked::wrong() },
    }
}
