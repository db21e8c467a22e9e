//! The settings (GUCs) without hooks: private statics, read through the accessors below, and
//! registered by [`init`]. All of mfa_auth's own are superuser-set (PGC_SUSET) or server-wide
//! (PGC_SIGHUP): an ordinary role can neither loosen the limits nor change them for its own
//! session. A setting with a hook lives beside the hook's owner instead: the identity settings
//! in src/session/settings.rs, the master keys in src/secrets.rs.

use std::ffi::CString;

use pgrx::guc::{GucContext, GucFlags, GucRegistry, GucSetting};
use pgrx::PostgresGucEnum;

static CHALLENGE_EXPIRY: GucSetting<i32> = GucSetting::<i32>::new(300);
static MAX_FAILED_ATTEMPTS: GucSetting<i32> = GucSetting::<i32>::new(5);
static LOCKOUT_DURATION: GucSetting<i32> = GucSetting::<i32>::new(300);
static PHONE_RESEND_INTERVAL: GucSetting<i32> = GucSetting::<i32>::new(60);
static TOTP_WINDOW: GucSetting<i32> = GucSetting::<i32>::new(1);
static WEBAUTHN_RP_ID: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(None);
static WEBAUTHN_RP_NAME: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(None);
static WEBAUTHN_ORIGINS: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(None);
static WEBAUTHN_USER_VERIFICATION: GucSetting<UvSetting> = GucSetting::<UvSetting>::new(UvSetting::Preferred);

/// mfa_auth.webauthn_user_verification's values: an enum setting, so `SET` refuses any other
/// value (22023) instead of the next WebAuthn call.
#[derive(PostgresGucEnum, Clone, Copy, PartialEq, Eq, Debug)]
pub enum UvSetting {
    #[name = c"required"]
    Required,
    #[name = c"preferred"]
    Preferred,
    #[name = c"discouraged"]
    Discouraged,
}
static AUDIT: GucSetting<bool> = GucSetting::<bool>::new(true);
static AUDIT_RETENTION: GucSetting<i32> = GucSetting::<i32>::new(90 * 86_400);
static AUDIT_LOG_SERVER: GucSetting<bool> = GucSetting::<bool>::new(false);
static REVERIFY_WINDOW: GucSetting<i32> = GucSetting::<i32>::new(0);

/// mfa_auth.challenge_expiry, seconds.
pub fn challenge_expiry() -> i32 {
    CHALLENGE_EXPIRY.get()
}
/// mfa_auth.max_failed_attempts.
pub fn max_failed_attempts() -> i32 {
    MAX_FAILED_ATTEMPTS.get()
}
/// mfa_auth.lockout_duration, seconds.
pub fn lockout_duration() -> i32 {
    LOCKOUT_DURATION.get()
}
/// mfa_auth.phone_resend_interval, seconds.
pub fn phone_resend_interval() -> i32 {
    PHONE_RESEND_INTERVAL.get()
}
/// mfa_auth.totp_window, steps either side.
pub fn totp_window() -> i32 {
    TOTP_WINDOW.get()
}

/// A string setting, trimmed; None when unset or blank.
fn text(s: &GucSetting<Option<CString>>) -> Option<String> {
    s.get().map(|c| c.to_string_lossy().trim().to_owned()).filter(|v| !v.is_empty())
}
/// mfa_auth.webauthn_rp_id.
pub fn webauthn_rp_id() -> Option<String> {
    text(&WEBAUTHN_RP_ID)
}
/// mfa_auth.webauthn_rp_name.
pub fn webauthn_rp_name() -> Option<String> {
    text(&WEBAUTHN_RP_NAME)
}
/// mfa_auth.webauthn_origins (comma-separated).
pub fn webauthn_origins() -> Option<String> {
    text(&WEBAUTHN_ORIGINS)
}
/// mfa_auth.webauthn_user_verification.
pub fn webauthn_user_verification() -> mfa_auth_core::webauthn::ceremony::UserVerification {
    use mfa_auth_core::webauthn::ceremony::UserVerification;
    match WEBAUTHN_USER_VERIFICATION.get() {
        UvSetting::Required => UserVerification::Required,
        UvSetting::Preferred => UserVerification::Preferred,
        UvSetting::Discouraged => UserVerification::Discouraged,
    }
}
/// mfa_auth.audit.
pub fn audit() -> bool {
    AUDIT.get()
}
/// mfa_auth.audit_retention, seconds (0: kept until removed by hand).
pub fn audit_retention() -> i32 {
    AUDIT_RETENTION.get()
}
/// mfa_auth.reverify_window, seconds (0: off).
pub fn reverify_window() -> i32 {
    REVERIFY_WINDOW.get()
}
/// mfa_auth.audit_log_server.
pub fn audit_log_server() -> bool {
    AUDIT_LOG_SERVER.get()
}

pub fn init() {
    GucRegistry::define_bool_guc(
        c"mfa_auth.audit",
        c"Whether MFA events are recorded in auth.mfa_audit_log.",
        c"On by default. Failures and refusals are recorded even when the caller rolls back (with the library preloaded).",
        &AUDIT,
        GucContext::Suset,
        GucFlags::default(),
    );
    GucRegistry::define_int_guc(
        c"mfa_auth.audit_retention",
        c"How long rows of auth.mfa_audit_log are kept; 0 keeps them until auth.cleanup_audit_log(older_than) removes them.",
        c"With the library preloaded the audit writer deletes older rows, in batches on the created_at index.",
        &AUDIT_RETENTION,
        0,
        i32::MAX,
        GucContext::Sighup,
        GucFlags::UNIT_S,
    );
    GucRegistry::define_bool_guc(
        c"mfa_auth.audit_log_server",
        c"Whether each MFA event is also written to the server log, as one line of JSON (for a SIEM; works with log_destination = jsonlog).",
        c"The line is \"mfa_auth audit: \" followed by the event's payload.",
        &AUDIT_LOG_SERVER,
        GucContext::Sighup,
        GucFlags::default(),
    );
    GucRegistry::define_int_guc(
        c"mfa_auth.reverify_window",
        c"How recently a session must have verified a factor for a self-service change of the user's factors; 0 (default) turns the check off.",
        c"When set, enrolling another factor, unenrolling one and generating recovery codes through the self-service functions need a verification within this time (42501 otherwise). The service functions are not affected.",
        &REVERIFY_WINDOW,
        0,
        604_800,
        GucContext::Suset,
        GucFlags::UNIT_S,
    );
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
    GucRegistry::define_string_guc(
        c"mfa_auth.webauthn_rp_id",
        c"WebAuthn relying party id: the domain credentials are scoped to (e.g. example.com).",
        c"Every origin in mfa_auth.webauthn_origins must be this domain or a subdomain of it.",
        &WEBAUTHN_RP_ID,
        GucContext::Suset,
        GucFlags::default(),
    );
    GucRegistry::define_string_guc(
        c"mfa_auth.webauthn_rp_name",
        c"WebAuthn relying party name shown by browsers and authenticators (default: the rp id).",
        c"",
        &WEBAUTHN_RP_NAME,
        GucContext::Suset,
        GucFlags::default(),
    );
    GucRegistry::define_string_guc(
        c"mfa_auth.webauthn_origins",
        c"Comma-separated exact origins WebAuthn responses may come from (e.g. https://app.example.com).",
        c"https origins, or http://localhost[:port] for development.",
        &WEBAUTHN_ORIGINS,
        GucContext::Suset,
        GucFlags::default(),
    );
    GucRegistry::define_enum_guc(
        c"mfa_auth.webauthn_user_verification",
        c"WebAuthn user verification: required, preferred (default) or discouraged.",
        c"With required, a response without the UV flag is refused.",
        &WEBAUTHN_USER_VERIFICATION,
        GucContext::Suset,
        GucFlags::default(),
    );
}
