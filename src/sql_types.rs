//! Conversions between SQL values and the core's plain Rust types.

use pgrx::prelude::*;

use crate::error::{raise, required, MfaError, OrRaise};
use crate::otp::{Algorithm, OtpParams};

/// Seconds between 1970-01-01 and 2000-01-01 (Postgres' timestamp epoch).
const PG_EPOCH_OFFSET_SECS: i64 = 946_684_800;

/// Unix seconds (rounded down) of a finite timestamptz.
pub fn unix_seconds(ts: TimestampWithTimeZone, arg: &'static str) -> i64 {
    if !ts.is_finite() {
        raise(MfaError::invalid(arg, "must be a finite timestamp"));
    }
    let micros: i64 = ts.into_inner();
    micros.div_euclid(1_000_000) + PG_EPOCH_OFFSET_SECS
}

/// Checked OTP parameters from nullable SQL arguments.
pub fn otp_params(digits: Option<i32>, period: Option<i32>, algorithm: Option<&str>) -> OtpParams {
    let algorithm = Algorithm::parse(required(algorithm, "algorithm")).or_raise();
    OtpParams::new(algorithm, i64::from(required(digits, "digits")), i64::from(required(period, "period"))).or_raise()
}
