//! One error type for the SQL layer, each case with an explicit SQLSTATE.
//!
//! Every failure a caller can cause is raised through [`raise`], never as a Rust
//! panic (which would surface as XX000 with panic text). Messages name the
//! argument at fault and never contain a secret or a code. The README's error
//! table lists every case.

use pgrx::pg_sys::panic::ErrorReport;
use pgrx::prelude::*;

use crate::otp::OtpError;

#[derive(Debug)]
pub enum MfaError {
    /// 22004: an argument that must not be NULL was NULL.
    NullArgument(&'static str),
    /// 22023: an argument is outside its documented domain.
    InvalidParameter { arg: &'static str, reason: String },
    /// 22023 / 54000: from the OTP core.
    Otp(OtpError),
    /// P0002: no such challenge.
    ChallengeNotFound,
    /// P0002: no such factor.
    FactorNotFound,
    /// P0002: the factor has no unverified, unexpired challenge (or does not exist).
    NoOpenChallenge,
    /// 28000: the challenge is older than mfa_auth.challenge_expiry.
    ChallengeExpired,
    /// 55000: the challenge was verified already.
    ChallengeAlreadyVerified,
    /// 42501: verified from another IP address than the challenge was created from.
    IpMismatch,
    /// 53400: too many failed attempts; the factor is locked for mfa_auth.lockout_duration.
    FactorLocked,
    /// 55006: a phone challenge was sent less than mfa_auth.phone_resend_interval ago.
    ResendTooSoon(i32),
    /// 53400: the user has the maximum number of factors (that number).
    TooManyFactors(i64),
    /// 23505: friendly_name or phone already used by another factor of the user.
    DuplicateFactor(&'static str),
    /// 0A000: challenges of this factor type are not supported.
    UnsupportedFactor(String),
    /// 28000: no current user (a gateway role without a `sub` claim).
    NoAuthenticatedUser,
    /// P0002: the current user has no TOTP factor (or not the one given).
    NoFactor,
    /// P0002: the current user has no WebAuthn factor (or not the one given).
    NoWebauthnFactor,
    /// 21000: the current user has several TOTP factors and none was named.
    SeveralFactors,
    /// 25001: the self-service verification was called inside a transaction block or
    /// subtransaction while the library is not preloaded (a ROLLBACK would undo the count).
    AttemptsNotDurable(&'static str),
    /// 22023: mfa_auth.encryption_keys is malformed (which entry and why, never the key).
    KeyringInvalid { entry: usize, reason: &'static str },
    /// 55000: a stored secret cannot be decrypted with the configured keys.
    SecretUnreadable { factor: String, reason: String },
    /// 55000: auth.rotate_secrets() needs a key in mfa_auth.encryption_keys.
    NoEncryptionKey,
    /// 55000: mfa_auth.encryption_keys_file is set and cannot be used (why; never a key).
    KeyFileUnusable { path: String, reason: String },
    /// 55000: a phone code was hashed with a master key that is no longer configured.
    PhoneKeyMissing(String),
    /// 53400: the shared attempt table has no room this factor may take: every entry of its
    /// window is locked or failed within the lockout duration (fail closed).
    AttemptTableFull,
    /// 42501: the user already has a verified factor, and the session is not aal2 for them.
    /// The text says what was refused ("verify another factor", ...).
    Aal2Required(&'static str),
    /// 40001: at REPEATABLE READ or SERIALIZABLE, what the call must change was changed by a
    /// transaction that committed after this one's snapshot (retry the transaction).
    SerializationFailure(&'static str),
    /// 55000: a self-service function in database-session mode while
    /// mfa_auth.database_sessions is off.
    DatabaseSessionsOff(&'static str),
    /// 22023: record_amr of an MFA method (those are recorded by verification only).
    MfaMethodNotRecordable(String),
    /// 22023: a WebAuthn credential that is not one (field and why).
    Webauthn(crate::webauthn::WebauthnError),
    /// 55000: a WebAuthn setting is missing or wrong (which one, and why).
    WebauthnSetting { setting: &'static str, reason: String },
    /// 55000: the WebAuthn challenge was used up by a failed attempt (or was a registration
    /// challenge of a factor registered since).
    WebauthnChallengeUsed,
    /// 42809: a code given for a WebAuthn challenge, or a WebAuthn credential for a
    /// challenge of another factor type (that type).
    WrongVerifier(&'static str),
    /// 55000: recovery codes for a user without a verified factor (they back one up).
    NoVerifiedFactor,
    /// P0002: the user has no recovery codes.
    NoRecoveryCodes,
    /// 25006: a function that writes, called on a standby server (`standby`) or in a
    /// read-only transaction on the primary.
    ReadOnly { function: &'static str, standby: bool },
    /// 42501: schema `auth` is not safe to run statements in (why): not the extension's, or
    /// owned by, or open to CREATE by, a role that is not a superuser.
    SchemaUnsafe(String),
    /// 55000: the database's mfa_auth objects are at a version this library does not serve
    /// (0.1.0's): `ALTER EXTENSION mfa_auth UPDATE` first.
    NotUpdated(String),
    /// XX000: reading a row this extension's own statement returned failed (a bug).
    Internal(String),
    /// 28000: mfa_auth.verification_hook rejected the verification (the hook's message).
    VerificationRejected(String),
    /// 42501: mfa_auth.enrollment_hook rejected the enrollment (the hook's message).
    EnrollmentRejected(String),
    /// 39000: a hook failed (raised, timed out, answered no decision): refused, fail closed.
    HookFailed { setting: &'static str, reason: String, sqlstate: Option<String> },
    /// 42501: mfa_auth.reverify_window is set and the session has not verified a factor of
    /// the user within it (what was refused).
    ReverifyRequired(&'static str),
}

impl From<crate::webauthn::WebauthnError> for MfaError {
    fn from(e: crate::webauthn::WebauthnError) -> Self {
        MfaError::Webauthn(e)
    }
}

impl From<pgrx::spi::SpiError> for MfaError {
    fn from(e: pgrx::spi::SpiError) -> Self {
        MfaError::Internal(e.to_string())
    }
}

impl From<OtpError> for MfaError {
    fn from(e: OtpError) -> Self {
        MfaError::Otp(e)
    }
}

impl From<crate::otp::base32::Base32Error> for MfaError {
    fn from(e: crate::otp::base32::Base32Error) -> Self {
        MfaError::Otp(OtpError::Base32(e))
    }
}

impl From<mfa_auth_core::sealing::SealError> for MfaError {
    fn from(e: mfa_auth_core::sealing::SealError) -> Self {
        use mfa_auth_core::sealing::SealError;
        match e {
            SealError::Keyring { entry, reason } => MfaError::KeyringInvalid { entry, reason },
            SealError::NoKey => MfaError::NoEncryptionKey,
            SealError::Random(e) => MfaError::Otp(e),
            // Opening errors carry the factor id; they are mapped where it is known.
            other => MfaError::Internal(other.to_string()),
        }
    }
}

impl MfaError {
    pub fn invalid(arg: &'static str, reason: impl Into<String>) -> Self {
        MfaError::InvalidParameter { arg, reason: reason.into() }
    }

    pub fn sqlstate(&self) -> PgSqlErrorCode {
        use PgSqlErrorCode::*;
        match self {
            MfaError::NullArgument(_) => ERRCODE_NULL_VALUE_NOT_ALLOWED,
            MfaError::InvalidParameter { .. } => ERRCODE_INVALID_PARAMETER_VALUE,
            MfaError::Otp(OtpError::QrTooLong | OtpError::TooLong { .. })
            | MfaError::Otp(OtpError::Base32(crate::otp::base32::Base32Error::TooLong)) => {
                ERRCODE_PROGRAM_LIMIT_EXCEEDED
            }
            MfaError::Otp(OtpError::RandomSource(_)) => ERRCODE_SYSTEM_ERROR,
            MfaError::Otp(_) => ERRCODE_INVALID_PARAMETER_VALUE,
            MfaError::ChallengeNotFound | MfaError::FactorNotFound | MfaError::NoOpenChallenge => ERRCODE_NO_DATA_FOUND,
            MfaError::ChallengeExpired => ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION,
            MfaError::ChallengeAlreadyVerified => ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
            MfaError::IpMismatch => ERRCODE_INSUFFICIENT_PRIVILEGE,
            MfaError::FactorLocked | MfaError::TooManyFactors(_) | MfaError::AttemptTableFull => {
                ERRCODE_CONFIGURATION_LIMIT_EXCEEDED
            }
            MfaError::Aal2Required(_) => ERRCODE_INSUFFICIENT_PRIVILEGE,
            MfaError::SerializationFailure(_) => ERRCODE_T_R_SERIALIZATION_FAILURE,
            MfaError::DatabaseSessionsOff(_) => ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
            MfaError::MfaMethodNotRecordable(_) => ERRCODE_INVALID_PARAMETER_VALUE,
            MfaError::Webauthn(_) => ERRCODE_INVALID_PARAMETER_VALUE,
            MfaError::WebauthnSetting { .. } | MfaError::WebauthnChallengeUsed => {
                ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE
            }
            MfaError::WrongVerifier(_) => ERRCODE_WRONG_OBJECT_TYPE,
            MfaError::NoVerifiedFactor => ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
            MfaError::NoRecoveryCodes => ERRCODE_NO_DATA_FOUND,
            MfaError::ResendTooSoon(_) => ERRCODE_OBJECT_IN_USE,
            MfaError::DuplicateFactor(_) => ERRCODE_UNIQUE_VIOLATION,
            MfaError::UnsupportedFactor(_) => ERRCODE_FEATURE_NOT_SUPPORTED,
            MfaError::Internal(_) => ERRCODE_INTERNAL_ERROR,
            MfaError::VerificationRejected(_) => ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION,
            MfaError::EnrollmentRejected(_) | MfaError::ReverifyRequired(_) => ERRCODE_INSUFFICIENT_PRIVILEGE,
            MfaError::HookFailed { .. } => ERRCODE_EXTERNAL_ROUTINE_INVOCATION_EXCEPTION,
            MfaError::ReadOnly { .. } => ERRCODE_READ_ONLY_SQL_TRANSACTION,
            MfaError::SchemaUnsafe(_) => ERRCODE_INSUFFICIENT_PRIVILEGE,
            MfaError::NotUpdated(_) => ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
            MfaError::NoAuthenticatedUser => ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION,
            MfaError::NoFactor | MfaError::NoWebauthnFactor => ERRCODE_NO_DATA_FOUND,
            MfaError::SeveralFactors => ERRCODE_CARDINALITY_VIOLATION,
            MfaError::AttemptsNotDurable(_) => ERRCODE_ACTIVE_SQL_TRANSACTION,
            MfaError::KeyringInvalid { .. } => ERRCODE_INVALID_PARAMETER_VALUE,
            MfaError::SecretUnreadable { .. }
            | MfaError::NoEncryptionKey
            | MfaError::KeyFileUnusable { .. }
            | MfaError::PhoneKeyMissing(_) => ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
        }
    }

    pub fn message(&self) -> String {
        match self {
            MfaError::NullArgument(arg) => format!("{arg} must not be NULL"),
            MfaError::InvalidParameter { arg, reason } => format!("invalid {arg}: {reason}"),
            MfaError::Otp(e) => e.to_string(),
            MfaError::ChallengeNotFound => "MFA challenge not found".into(),
            MfaError::FactorNotFound => "MFA factor not found".into(),
            MfaError::SerializationFailure(what) => {
                format!("could not serialize access: {what} changed in a concurrent transaction")
            }
            MfaError::NoOpenChallenge => "no open MFA challenge for this factor".into(),
            MfaError::ChallengeExpired => "MFA challenge has expired".into(),
            MfaError::ChallengeAlreadyVerified => "MFA challenge was already verified".into(),
            MfaError::IpMismatch => "MFA challenge was created from a different IP address".into(),
            MfaError::FactorLocked => "MFA factor is locked after too many failed attempts".into(),
            MfaError::ResendTooSoon(secs) => {
                format!("a phone challenge for this factor was sent less than {secs} seconds ago")
            }
            MfaError::TooManyFactors(max) => format!("a user can enroll at most {max} MFA factors"),
            MfaError::DuplicateFactor(what) => (*what).into(),
            MfaError::UnsupportedFactor(t) => format!("challenges of {t} factors are not supported"),
            MfaError::Internal(e) => format!("mfa_auth internal error: {e}"),
            MfaError::VerificationRejected(m) if m.is_empty() => "MFA verification rejected".into(),
            MfaError::EnrollmentRejected(m) if m.is_empty() => "MFA enrollment rejected".into(),
            MfaError::VerificationRejected(m) | MfaError::EnrollmentRejected(m) => m.clone(),
            MfaError::HookFailed { setting, reason, .. } => format!("{setting} failed: {reason}"),
            MfaError::ReverifyRequired(what) => {
                format!("to {what}, this session must have verified a factor within mfa_auth.reverify_window")
            }
            MfaError::SchemaUnsafe(why) => format!("schema \"auth\" of mfa_auth is not safe to use: {why}"),
            MfaError::NotUpdated(version) => format!(
                "mfa_auth's objects in this database are at version {version}, which library {} does not serve",
                env!("CARGO_PKG_VERSION")
            ),
            MfaError::ReadOnly { function, standby: true } => {
                format!("{function} cannot run on a standby server: it writes to the primary's tables")
            }
            MfaError::ReadOnly { function, standby: false } => {
                format!("{function} cannot run in a read-only transaction: it writes")
            }
            MfaError::NoAuthenticatedUser => "no authenticated user for this session".into(),
            MfaError::NoFactor => "no TOTP factor enrolled for the current user".into(),
            MfaError::NoWebauthnFactor => "no WebAuthn factor enrolled for the current user".into(),
            MfaError::SeveralFactors => "the current user has several factors of this type: pass factor_id".into(),
            MfaError::AttemptsNotDurable(f) => {
                format!("{f} cannot run inside a transaction block or subtransaction when mfa_auth is not preloaded")
            }
            MfaError::KeyringInvalid { entry, reason } => {
                format!("invalid value for mfa_auth.encryption_keys: entry {entry}: {reason}")
            }
            MfaError::SecretUnreadable { factor, reason } => {
                format!("cannot decrypt the TOTP secret of factor {factor}: {reason}")
            }
            MfaError::NoEncryptionKey => "no master key is configured (mfa_auth.encryption_keys_file)".into(),
            MfaError::KeyFileUnusable { path, reason } => {
                format!("mfa_auth.encryption_keys_file \"{path}\" cannot be used: {reason}")
            }
            MfaError::PhoneKeyMissing(id) => {
                format!("cannot check the phone code: it was hashed with key \"{id}\", which is not configured")
            }
            MfaError::AttemptTableFull => {
                "too many factors have recent failed attempts: this verification cannot be counted, so it is refused"
                    .into()
            }
            MfaError::Aal2Required(what) => {
                format!("an aal2 session is required to {what}: verify an existing factor first")
            }
            MfaError::DatabaseSessionsOff(f) => {
                format!("{f} needs a database session, and database-session MFA is off (mfa_auth.database_sessions)")
            }
            MfaError::Webauthn(e) => e.to_string(),
            MfaError::WebauthnSetting { setting, reason } => {
                format!("WebAuthn is not configured: {setting} {reason}")
            }
            MfaError::WebauthnChallengeUsed => "this WebAuthn challenge can no longer be answered".into(),
            MfaError::NoVerifiedFactor => {
                "recovery codes need a verified factor: they back one up, they do not replace it".into()
            }
            MfaError::NoRecoveryCodes => "no recovery codes for this user".into(),
            MfaError::WrongVerifier(t) => match *t {
                "webauthn" => "this challenge is for a WebAuthn factor: verify it with auth.verify_webauthn".into(),
                "recovery_code" => {
                    "recovery codes have no challenges: verify one with auth.verify_recovery_code".into()
                }
                t => format!("this challenge is for a {t} factor: verify it with auth.verify_challenge"),
            },
            MfaError::MfaMethodNotRecordable(m) => format!(
                "invalid authentication_method: \"{m}\" is an MFA method, recorded only by a successful verification"
            ),
        }
    }

    fn detail(&self) -> Option<String> {
        match self {
            MfaError::VerificationRejected(_) => Some(
                "Rejected by mfa_auth.verification_hook: the user's MFA sessions are signed out (no aal2 anywhere)."
                    .into(),
            ),
            MfaError::EnrollmentRejected(_) => {
                Some("Rejected by mfa_auth.enrollment_hook: no factor was created.".into())
            }
            MfaError::HookFailed { sqlstate: Some(code), .. } => Some(format!("The hook raised SQLSTATE {code}.")),
            _ => None,
        }
    }

    fn hint(&self) -> Option<&'static str> {
        match self {
            MfaError::HookFailed { .. } => Some(
                "The verification or enrollment is refused while the hook fails (fail closed); the server log and auth.mfa_audit_log (event hook_failed) have the reason.",
            ),
            MfaError::ReverifyRequired(_) => Some(
                "Verify a factor in this session first (auth.mfa_verify, or verify_challenge/verify_factor with this session_id), then retry at once.",
            ),
            MfaError::SerializationFailure(_) => Some("Retry the transaction."),
            MfaError::Otp(OtpError::Base32(_)) => {
                Some("Secrets are RFC 4648 base32: letters A-Z and digits 2-7; spaces, hyphens and '=' padding are ignored.")
            }
            MfaError::Otp(OtpError::QrTooLong) => Some(
                "A QR code holds at most 2331 bytes, 3391 alphanumeric characters or 5596 digits at this error-correction level.",
            ),
            MfaError::WebauthnSetting { .. } => Some(
                "A superuser sets mfa_auth.webauthn_rp_id (e.g. example.com) and mfa_auth.webauthn_origins (e.g. https://app.example.com), in postgresql.conf or with ALTER DATABASE ... SET.",
            ),
            MfaError::ChallengeExpired
            | MfaError::ChallengeAlreadyVerified
            | MfaError::NoOpenChallenge
            | MfaError::WebauthnChallengeUsed => {
                Some("Create a new challenge with auth.create_challenge().")
            }
            MfaError::FactorLocked => {
                Some("Wait for mfa_auth.lockout_duration, then try again (an administrator can lift it with auth.unlock_factor()).")
            }
            MfaError::NoFactor => Some("Enroll one with auth.enroll_my_totp()."),
            MfaError::NoWebauthnFactor => Some("Enroll one with auth.enroll_my_webauthn()."),
            MfaError::NoRecoveryCodes => Some("Generate them from an aal2 session with auth.generate_recovery_codes()."),
            MfaError::NoAuthenticatedUser => Some("In gateway mode request.jwt.claims must carry a UUID \"sub\"."),
            MfaError::AttemptsNotDurable(_) => Some(
                "A ROLLBACK would undo the failed-attempt count. Call it on its own (autocommit), or add mfa_auth to shared_preload_libraries and restart the server.",
            ),
            MfaError::KeyringInvalid { .. } | MfaError::NoEncryptionKey => Some(
                "Keys are key_id:base64-of-32-bytes, the current key first: one per line in mfa_auth.encryption_keys_file (or comma-separated in the deprecated mfa_auth.encryption_keys).",
            ),
            MfaError::KeyFileUnusable { .. } => Some(
                "The file must belong to the database server's OS user, with mode 0600 or stricter, and hold one key_id:base64-of-32-bytes per line; fix it and reload.",
            ),
            MfaError::PhoneKeyMissing(_) => Some("Keep old keys configured until open challenges have expired."),
            MfaError::AttemptTableFull => Some(
                "Try again after mfa_auth.lockout_duration; auth.attempt_tracking() shows the shared table's use and refusals.",
            ),
            MfaError::Aal2Required(_) => Some(
                "This user already has a verified factor. Verify it in this session first (auth.mfa_verify, or verify_challenge/verify_factor with this session_id), then retry in the same session.",
            ),
            MfaError::DatabaseSessionsOff(_) => Some(
                "A superuser can turn it on with ALTER DATABASE ... SET mfa_auth.database_sessions = on (or ALTER ROLE ... SET) for clients that connect directly or through session pooling; keep it off where a transaction pooler shares server connections between clients.",
            ),
            MfaError::MfaMethodNotRecordable(_) => Some(
                "auth.verify_challenge / auth.verify_factor with a session_id record totp, mfa/phone and mfa/webauthn claims bound to the factor's user.",
            ),
            MfaError::SchemaUnsafe(_) => Some(
                "Whoever owns schema auth, or may create objects in it, could re-point the names mfa_auth's SECURITY DEFINER functions use. A superuser restores it: ALTER SCHEMA auth OWNER TO <a superuser>; REVOKE CREATE ON SCHEMA auth FROM <other roles>, PUBLIC (docs/security.md, \"Schema auth\").",
            ),
            MfaError::NotUpdated(_) => Some(
                "Run ALTER EXTENSION mfa_auth UPDATE in this database (as a superuser): it keeps every factor, challenge and claim.",
            ),
            MfaError::ReadOnly { standby: true, .. } => Some(
                "Call it on the primary. A standby answers auth.aal(), auth.amr(), auth.mfa_verified_within() and row-level-security policies from the claims it has replayed.",
            ),
            MfaError::ReadOnly { standby: false, .. } => {
                Some("Call it in a read-write transaction (default_transaction_read_only = off).")
            }
            MfaError::SecretUnreadable { .. } => Some(
                "List the key the secret was encrypted with in mfa_auth.encryption_keys_file; keep old keys until auth.rotate_secrets() returns 0.",
            ),
            _ => None,
        }
    }
}

/// Raises `e` as a Postgres ERROR with its SQLSTATE. Does not return.
pub fn raise(e: MfaError) -> ! {
    let mut report = ErrorReport::new(e.sqlstate(), e.message(), "mfa_auth");
    if let Some(d) = e.detail() {
        report = report.set_detail(d);
    }
    if let Some(h) = e.hint() {
        report = report.set_hint(h);
    }
    report.report(PgLogLevel::ERROR);
    unreachable!("ERROR does not return")
}

/// Keeps Rust backtraces out of every error a client receives. pgrx attaches a backtrace to
/// the DETAIL of an error that crosses its boundary (a Postgres error raised inside SPI, such
/// as a lock timeout or a serialization failure, or a Rust panic) whenever backtrace capture
/// is enabled, which the server's environment decides (RUST_BACKTRACE, RUST_LIB_BACKTRACE):
/// module paths and source files of the extension then reach the client. The standard library
/// reads those variables once per copy of itself (this library links its own) and caches the
/// answer: called from `_PG_init`, before anything can capture, this caches "disabled" with
/// RUST_LIB_BACKTRACE=0 set for the one call, then puts the environment back as it was. In the
/// postmaster (preloaded) every backend inherits the answer.
pub fn disable_backtraces() {
    let before = std::env::var_os("RUST_LIB_BACKTRACE");
    std::env::set_var("RUST_LIB_BACKTRACE", "0");
    let probe = std::backtrace::Backtrace::capture();
    match before {
        Some(v) => std::env::set_var("RUST_LIB_BACKTRACE", v),
        None => std::env::remove_var("RUST_LIB_BACKTRACE"),
    }
    debug_assert_eq!(probe.status(), std::backtrace::BacktraceStatus::Disabled);
}

/// Refuses (25006) a function that writes when it cannot: on a standby (hot standby
/// replays the primary's WAL and assigns no transaction ids) or in a read-only transaction.
/// Called first by every such function, before it counts an attempt or reads a secret, so a
/// standby's shared attempt table never takes part in a decision.
pub fn require_writable(function: &'static str) {
    // SAFETY: plain reads of backend state; RecoveryInProgress() cannot raise.
    let (standby, read_only) = unsafe { (pg_sys::RecoveryInProgress(), pg_sys::XactReadOnly) };
    if standby || read_only {
        raise(MfaError::ReadOnly { function, standby });
    }
}

/// `result.or_raise()`: the value, or the error raised with its SQLSTATE.
pub trait OrRaise<T> {
    fn or_raise(self) -> T;
}

impl<T, E: Into<MfaError>> OrRaise<T> for Result<T, E> {
    #[inline]
    fn or_raise(self) -> T {
        match self {
            Ok(v) => v,
            Err(e) => raise(e.into()),
        }
    }
}

/// The value of a SQL argument that must not be NULL.
#[inline]
pub fn required<T>(value: Option<T>, arg: &'static str) -> T {
    match value {
        Some(v) => v,
        None => raise(MfaError::NullArgument(arg)),
    }
}
