//! Settings (GUCs). All are superuser-set (PGC_SUSET): an ordinary role can
//! neither loosen the limits nor change them for its own session.

use pgrx::guc::{GucContext, GucFlags, GucRegistry, GucSetting};

pub static CHALLENGE_EXPIRY: GucSetting<i32> = GucSetting::<i32>::new(300);
pub static MAX_FAILED_ATTEMPTS: GucSetting<i32> = GucSetting::<i32>::new(5);
pub static LOCKOUT_DURATION: GucSetting<i32> = GucSetting::<i32>::new(300);
pub static PHONE_RESEND_INTERVAL: GucSetting<i32> = GucSetting::<i32>::new(60);
pub static TOTP_WINDOW: GucSetting<i32> = GucSetting::<i32>::new(1);

pub fn init() {
    GucRegistry::define_int_guc(
        c"mfa_auth.challenge_expiry",
        c"How long an MFA challenge can be verified after it is created.",
        c"After this time verify_challenge refuses the challenge (SQLSTATE 28000).",
        &CHALLENGE_EXPIRY,
        1,
        86_400,
        GucContext::Suset,
        GucFlags::UNIT_S,
    );
    GucRegistry::define_int_guc(
        c"mfa_auth.max_failed_attempts",
        c"Failed verifications after which a factor is locked out.",
        c"A locked factor refuses every code, right or wrong, for mfa_auth.lockout_duration.",
        &MAX_FAILED_ATTEMPTS,
        1,
        1000,
        GucContext::Suset,
        GucFlags::default(),
    );
    GucRegistry::define_int_guc(
        c"mfa_auth.lockout_duration",
        c"How long a factor stays locked after too many failed verifications.",
        c"",
        &LOCKOUT_DURATION,
        1,
        604_800,
        GucContext::Suset,
        GucFlags::UNIT_S,
    );
    GucRegistry::define_int_guc(
        c"mfa_auth.phone_resend_interval",
        c"Minimum time between two challenges of one phone factor.",
        c"",
        &PHONE_RESEND_INTERVAL,
        0,
        86_400,
        GucContext::Suset,
        GucFlags::UNIT_S,
    );
    GucRegistry::define_int_guc(
        c"mfa_auth.totp_window",
        c"TOTP time steps accepted either side of the current one.",
        c"",
        &TOTP_WINDOW,
        0,
        10,
        GucContext::Suset,
        GucFlags::default(),
    );
}
