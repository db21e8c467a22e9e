//! The verification row: everything one verification decides on, read with its rows locked
//! (`FOR UPDATE`), so concurrent verifications of one factor queue on the look-up and each
//! then sees the rows as the previous one left them. Below both the factor kinds, which check
//! responses against it, and the pipeline (src/verification/mod.rs), which loads it.

use pgrx::prelude::*;
use pgrx::spi::SpiClient;

use crate::pg::error::{raise, MfaError, OrRaise};
use crate::pg::spi::{run, Stmt};
use crate::pg::types::factor_type as parse_type;
use mfa_auth_core::factor_type::FactorType;
use mfa_auth_core::verification::State;

/// A challenge, with its factor. `$2` is the challenge expiry in seconds, `$3` the caller's
/// IP address (or NULL). The columns are read by name into [`Locked`].
macro_rules! challenge_lookup {
    ($where:literal) => {
        concat!(
            "SELECT c.id AS challenge_id, f.id AS factor_id, f.user_id, f.factor_type::text AS factor_type,
                    f.status OPERATOR(pg_catalog.=) 'verified' AS factor_verified,
                    f.secret, f.totp_algorithm::pg_catalog.text AS totp_algorithm,
                    f.totp_digits::pg_catalog.int4 AS totp_digits, f.totp_period::pg_catalog.int4 AS totp_period,
                    f.last_totp_step,
                    f.locked_until > pg_catalog.clock_timestamp() AS locked,
                    c.verified_at IS NOT NULL AS challenge_verified,
                    c.created_at <= pg_catalog.clock_timestamp() - pg_catalog.make_interval(secs => $2) AS expired,
                    ($3::inet IS NOT NULL AND c.ip_address IS DISTINCT FROM $3::inet) AS ip_mismatch,
                    c.otp_code,
                    f.failed_attempts::pg_catalog.int4 AS failed_attempts,
                    f.locked_until IS NOT NULL AS lock_ran_out,
                    c.web_authn_session_data::text AS web_authn_session_data,
                    f.web_authn_credential::text AS web_authn_credential
               FROM auth.mfa_factors f JOIN auth.mfa_challenges c ON c.factor_id = f.id ",
            $where,
            " FOR UPDATE OF f, c"
        )
    };
}

/// By challenge id (primary key).
pub const LOOKUP_CHALLENGE: Stmt =
    Stmt { sql: challenge_lookup!("WHERE c.id = $1"), args: &[pg_sys::UUIDOID, pg_sys::INT4OID, pg_sys::INETOID] };

/// By factor id: its newest open (unverified, unexpired) challenge, found
/// newest-first on (factor_id, created_at DESC).
pub const LOOKUP_FACTOR: Stmt = Stmt {
    sql: challenge_lookup!(
        "WHERE c.id = (SELECT o.id FROM auth.mfa_challenges o
                        WHERE o.factor_id = $1 AND o.verified_at IS NULL
                          AND o.created_at > pg_catalog.clock_timestamp() - pg_catalog.make_interval(secs => $2)
                        ORDER BY o.created_at DESC LIMIT 1)"
    ),
    args: &[pg_sys::UUIDOID, pg_sys::INT4OID, pg_sys::INETOID],
};

/// A user's recovery-code set and its factor, locked (`OF s, f`): concurrent verifications of
/// one user queue here, and so does an unenroll of the factor (it locks the factor row
/// first), which then sees and removes the claim a verification in flight commits. A set has
/// no challenges: nothing to expire, verify twice or bind to an address. The set counts the
/// failures.
const LOOKUP_RECOVERY_CODES: Stmt = Stmt {
    sql: "SELECT s.id AS set_id, s.mfa_factor_id AS factor_id, s.user_id,
                 s.failed_verification_count AS failed_attempts,
                 s.verification_locked_until > pg_catalog.clock_timestamp() AS locked,
                 s.verification_locked_until IS NOT NULL AS lock_ran_out
            FROM auth.mfa_recovery_code_sets s JOIN auth.mfa_factors f ON f.id = s.mfa_factor_id
           WHERE s.user_id = $1 FOR UPDATE OF s, f",
    args: &[pg_sys::UUIDOID],
};

/// Which rows a verification is of.
#[derive(Clone, Copy)]
pub enum Lookup {
    /// A challenge, by its id ([`LOOKUP_CHALLENGE`]).
    Challenge(pgrx::Uuid),
    /// The factor's newest open challenge ([`LOOKUP_FACTOR`]).
    Factor(pgrx::Uuid),
    /// The user's recovery codes.
    RecoveryCodes(pgrx::Uuid),
}

impl Lookup {
    /// What is raised when the look-up finds nothing.
    fn missing(self) -> MfaError {
        match self {
            Lookup::Challenge(_) => MfaError::ChallengeNotFound,
            Lookup::Factor(_) => MfaError::NoOpenChallenge,
            Lookup::RecoveryCodes(_) => MfaError::NoRecoveryCodes,
        }
    }

    /// Finds and locks the rows; raises [`Lookup::missing`] when there are none.
    pub fn load(self, client: &mut SpiClient<'_>, ip_address: Option<pgrx::Inet>) -> Locked {
        let expiry = crate::settings::challenge_expiry();
        let found = match self {
            Lookup::Challenge(id) => run(client, &LOOKUP_CHALLENGE, &[id.into(), expiry.into(), ip_address.into()]),
            Lookup::Factor(id) => run(client, &LOOKUP_FACTOR, &[id.into(), expiry.into(), ip_address.into()]),
            Lookup::RecoveryCodes(user) => run(client, &LOOKUP_RECOVERY_CODES, &[user.into()]),
        };
        if found.is_empty() {
            raise(self.missing());
        }
        let row = found.first();
        match self {
            Lookup::RecoveryCodes(_) => Locked::read_recovery_codes(&row),
            _ => Locked::read_challenge(&row),
        }
    }
}

/// The locked rows of one verification.
pub(crate) struct Locked {
    /// What the verification answers: its challenge, or the user's recovery-code set.
    pub(crate) answered: pgrx::Uuid,
    /// The challenge (None for recovery codes).
    pub(crate) challenge_id: Option<pgrx::Uuid>,
    /// The row that counts failures and holds the lock: the factor, or the recovery-code set.
    pub(crate) counted_in: pgrx::Uuid,
    pub(crate) factor_id: pgrx::Uuid,
    pub(crate) user_id: pgrx::Uuid,
    pub(crate) factor_type: FactorType,
    pub(crate) factor_verified: bool,
    pub(crate) secret: Option<String>,
    pub(crate) totp_algorithm: String,
    pub(crate) totp_digits: i32,
    pub(crate) totp_period: i32,
    pub(crate) last_totp_step: Option<i64>,
    /// The row's lock has not run out.
    pub(crate) locked: bool,
    pub(crate) challenge_verified: bool,
    pub(crate) expired: bool,
    pub(crate) ip_mismatch: bool,
    pub(crate) otp_code: Option<String>,
    pub(crate) failed_attempts: i32,
    /// The row holds a lock (which, when `locked` is false, has run out).
    pub(crate) lock_ran_out: bool,
    pub(crate) web_authn_credential: Option<String>,
    /// NULL for other factor types, and once a failed WebAuthn attempt has used it up.
    pub(crate) web_authn_session_data: Option<String>,
}

fn flag(row: &pgrx::spi::SpiTupleTable<'_>, name: &str) -> bool {
    row.get_by_name::<bool, _>(name).or_raise().unwrap_or(false)
}

impl Locked {
    /// What refuses this verification before anything is evaluated (the row's own lock; the
    /// caller adds shared memory's).
    pub fn state(&self) -> State {
        State {
            locked: self.locked,
            challenge_verified: self.challenge_verified,
            expired: self.expired,
            ip_mismatch: self.ip_mismatch,
        }
    }

    fn read_challenge(row: &pgrx::spi::SpiTupleTable<'_>) -> Locked {
        let challenge_id: pgrx::Uuid = row.get_by_name("challenge_id").or_raise().expect("c.id");
        let factor_id: pgrx::Uuid = row.get_by_name("factor_id").or_raise().expect("f.id");
        Locked {
            answered: challenge_id,
            challenge_id: Some(challenge_id),
            counted_in: factor_id,
            factor_id,
            user_id: row.get_by_name("user_id").or_raise().expect("f.user_id"),
            factor_type: parse_type(&row.get_by_name::<String, _>("factor_type").or_raise().unwrap_or_default()),
            factor_verified: flag(row, "factor_verified"),
            secret: row.get_by_name("secret").or_raise(),
            totp_algorithm: row.get_by_name("totp_algorithm").or_raise().unwrap_or_default(),
            totp_digits: row.get_by_name("totp_digits").or_raise().unwrap_or(6),
            totp_period: row.get_by_name("totp_period").or_raise().unwrap_or(30),
            last_totp_step: row.get_by_name("last_totp_step").or_raise(),
            locked: flag(row, "locked"),
            challenge_verified: flag(row, "challenge_verified"),
            expired: flag(row, "expired"),
            ip_mismatch: flag(row, "ip_mismatch"),
            otp_code: row.get_by_name("otp_code").or_raise(),
            failed_attempts: row.get_by_name("failed_attempts").or_raise().unwrap_or(0),
            lock_ran_out: flag(row, "lock_ran_out"),
            web_authn_credential: row.get_by_name("web_authn_credential").or_raise(),
            web_authn_session_data: row.get_by_name("web_authn_session_data").or_raise(),
        }
    }

    fn read_recovery_codes(row: &pgrx::spi::SpiTupleTable<'_>) -> Locked {
        let set: pgrx::Uuid = row.get_by_name("set_id").or_raise().expect("s.id");
        Locked {
            answered: set,
            challenge_id: None,
            counted_in: set,
            factor_id: row.get_by_name("factor_id").or_raise().expect("s.mfa_factor_id"),
            user_id: row.get_by_name("user_id").or_raise().expect("s.user_id"),
            factor_type: FactorType::RecoveryCode,
            // Created verified (src/recovery.rs).
            factor_verified: true,
            secret: None,
            totp_algorithm: String::new(),
            totp_digits: 0,
            totp_period: 0,
            last_totp_step: None,
            locked: flag(row, "locked"),
            challenge_verified: false,
            expired: false,
            ip_mismatch: false,
            otp_code: None,
            failed_attempts: row.get_by_name("failed_attempts").or_raise().unwrap_or(0),
            lock_ran_out: flag(row, "lock_ran_out"),
            web_authn_credential: None,
            web_authn_session_data: None,
        }
    }
}
