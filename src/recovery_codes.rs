//! Recovery codes: a set of single-use codes per user that raise a session to aal2 when the
//! user's authenticator is lost. As in Supabase Auth, the set belongs to a `recovery_code`
//! factor of the user (created verified), so a claim earned with a code is bound to that
//! factor like every MFA claim, and removing the factor (or the user's last real factor)
//! removes the set. The code format and hashing are in the pure core (core/src/otp/recovery.rs).

use pgrx::datum::DatumWithOid;
use pgrx::prelude::*;
use pgrx::spi::SpiClient;

use crate::attempt_limits;
use crate::audit::{self, EntryExt, Event, Outcome, Traits};
use crate::error::{raise, required, MfaError, OrRaise};
use crate::factor_types::FactorType;
use crate::guc;
use crate::ids;
use crate::otp::recovery;
use crate::spi_util::{fresh_row, lock_user, run, Stmt};

/// Under the per-user lock enrollment takes, with a snapshot taken after it: whether the user
/// has a verified factor other than recovery codes, whether session `$2` is aal2 for them, and
/// their set (locked), so that a generation waiting on another sees the set it committed.
const GENERATE_CHECKS: Stmt = Stmt {
    sql: "SELECT EXISTS (SELECT 1 FROM auth.mfa_factors
                          WHERE user_id = $1 AND status = 'verified' AND factor_type::text <> 'recovery_code'),
                 EXISTS (SELECT 1 FROM auth.mfa_verified_claims v WHERE v.session_id = $2 AND v.user_id = $1),
                 (SELECT s.id FROM auth.mfa_recovery_code_sets s WHERE s.user_id = $1 FOR UPDATE)",
    args: &[pg_sys::UUIDOID, pg_sys::UUIDOID],
};

/// A new set: the recovery-code factor is verified at once (its codes go to an aal2 session).
const NEW_SET: Stmt = Stmt {
    sql: "WITH f AS (
              UPDATE auth.mfa_factors SET status = 'verified', updated_at = pg_catalog.clock_timestamp()
               WHERE id = $3 RETURNING id
          )
          INSERT INTO auth.mfa_recovery_code_sets (id, user_id, mfa_factor_id)
          SELECT $1, $2, f.id FROM f",
    args: &[pg_sys::UUIDOID, pg_sys::UUIDOID, pg_sys::UUIDOID],
};

/// Regeneration: the old codes go, the failure count and lock are reset, the new codes come.
const REPLACE_CODES: Stmt = Stmt {
    sql: "WITH gone AS (
              DELETE FROM auth.mfa_recovery_codes WHERE mfa_recovery_code_set_id = $1
          ), s AS (
              UPDATE auth.mfa_recovery_code_sets
                 SET failed_verification_count = 0, verification_locked_until = NULL,
                     updated_at = pg_catalog.clock_timestamp()
               WHERE id = $1 RETURNING mfa_factor_id
          )
          INSERT INTO auth.mfa_recovery_codes (mfa_recovery_code_set_id, code_hash, created_at)
          SELECT $1, h, pg_catalog.clock_timestamp() FROM pg_catalog.unnest($2::text[]) h
          RETURNING (SELECT mfa_factor_id FROM s)",
    args: &[pg_sys::UUIDOID, pg_sys::TEXTARRAYOID],
};

/// The user's set and its factor, locked: concurrent verifications of one user queue here,
/// and so does an unenroll of the factor (it locks the factor row first), which then sees and
/// removes the claim a verification in flight commits.
const LOCK_SET: Stmt = Stmt {
    sql: "SELECT s.id, s.mfa_factor_id, s.failed_verification_count,
                 s.verification_locked_until > pg_catalog.clock_timestamp(),
                 s.verification_locked_until IS NOT NULL
            FROM auth.mfa_recovery_code_sets s JOIN auth.mfa_factors f ON f.id = s.mfa_factor_id
           WHERE s.user_id = $1 FOR UPDATE OF s, f",
    args: &[pg_sys::UUIDOID],
};

/// Consumes the unused code whose hash is one of `$2` (one per configured key): one look-up
/// on (mfa_recovery_code_set_id, code_hash).
const CONSUME: Stmt = Stmt {
    sql: "UPDATE auth.mfa_recovery_codes SET consumed_at = pg_catalog.clock_timestamp()
           WHERE mfa_recovery_code_set_id = $1 AND code_hash = ANY ($2) AND consumed_at IS NULL
          RETURNING code_hash",
    args: &[pg_sys::UUIDOID, pg_sys::TEXTARRAYOID],
};

/// Success: the count and lock reset and, with a session, the claim recorded and bound to
/// the recovery-code factor.
const SUCCEED: Stmt = Stmt {
    sql: "WITH s AS (
              UPDATE auth.mfa_recovery_code_sets
                 SET failed_verification_count = 0, verification_locked_until = NULL,
                     updated_at = pg_catalog.clock_timestamp()
               WHERE id = $1 RETURNING updated_at
          ), claim AS (
              INSERT INTO auth.mfa_amr_claims AS a (id, session_id, authentication_method, created_at, updated_at)
              SELECT $4, $3, 'mfa/recovery_code', updated_at, updated_at FROM s WHERE $3 IS NOT NULL
              ON CONFLICT ON CONSTRAINT mfa_amr_claims_session_id_authentication_method_pkey
              DO UPDATE SET updated_at = excluded.updated_at
              RETURNING a.session_id
          )
          INSERT INTO auth.mfa_amr_claim_factors (session_id, authentication_method, factor_id)
          SELECT session_id, 'mfa/recovery_code', $2 FROM claim
          ON CONFLICT DO NOTHING",
    args: &[pg_sys::UUIDOID, pg_sys::UUIDOID, pg_sys::UUIDOID, pg_sys::UUIDOID],
};

const FAIL: Stmt = Stmt {
    sql: "UPDATE auth.mfa_recovery_code_sets
             SET failed_verification_count = $2,
                 verification_locked_until =
                     CASE WHEN $3 THEN pg_catalog.clock_timestamp() + pg_catalog.make_interval(secs => $4) END,
                 updated_at = pg_catalog.clock_timestamp()
           WHERE id = $1",
    args: &[pg_sys::UUIDOID, pg_sys::INT4OID, pg_sys::BOOLOID, pg_sys::INT4OID],
};

const RECOVERY_FACTOR: Stmt =
    Stmt { sql: "SELECT mfa_factor_id FROM auth.mfa_recovery_code_sets WHERE user_id = $1", args: &[pg_sys::UUIDOID] };

/// A new set of `count` codes for `user_id`, replacing any earlier one; `session_id` must be
/// aal2 for the user, who must have a verified factor. Returns the codes, grouped.
pub fn generate(user_id: pgrx::Uuid, session_id: Option<pgrx::Uuid>, count: i32) -> Vec<String> {
    if !(recovery::MIN_COUNT..=recovery::MAX_COUNT).contains(&i64::from(count)) {
        raise(MfaError::invalid(
            "count",
            format!("must be between {} and {}, got {count}", recovery::MIN_COUNT, recovery::MAX_COUNT),
        ));
    }
    let codes: Vec<String> = (0..count).map(|_| recovery::generate().or_raise()).collect();
    let set = Spi::connect_mut(|client| {
        lock_user(client, user_id);
        let (verified, aal2, set) = fresh_row(client, &GENERATE_CHECKS, &[user_id.into(), session_id.into()], |row| {
            (row.get::<bool>(1).unwrap_or(false), row.get::<bool>(2).unwrap_or(false), row.get::<pgrx::Uuid>(3))
        });
        if !verified {
            raise(MfaError::NoVerifiedFactor);
        }
        if !aal2 {
            raise(MfaError::Aal2Required("generate recovery codes"));
        }
        set
    });
    let set = set.unwrap_or_else(|| {
        // The factor first (the per-user factor limit applies), then its set.
        let factor = ids::new_factor_id();
        crate::factors::insert_factor(factor, user_id, None, FactorType::RecoveryCode, None, None);
        let set = ids::uuid_v7();
        Spi::connect_mut(|client| run(client, &NEW_SET, &[set.into(), user_id.into(), factor.into()]).len());
        set
    });
    let key = crate::secrets::recovery_code_keys().into_iter().next();
    let hashes: Vec<String> =
        codes.iter().map(|c| recovery::hash(set.as_bytes(), c, key.as_ref().map(|(id, k)| (id.as_str(), k)))).collect();
    let factor: Option<pgrx::Uuid> = Spi::connect_mut(|client| {
        let args: [DatumWithOid; 2] = [set.into(), hashes.into()];
        run(client, &REPLACE_CODES, &args).first().get(1).or_raise()
    });
    // A new set starts with a clean count (as its row does).
    if let Some(f) = factor {
        attempt_limits::clear(f.as_bytes());
        audit::at_commit(
            audit::factor_event(Event::RecoveryCodesGenerated, user_id, f, FactorType::RecoveryCode)
                .session_id(session_id)
                .traits(&Traits::new().int("count", i64::from(count))),
        );
    }
    codes.iter().map(|c| recovery::grouped(c)).collect()
}

/// Checks `code` against the user's set; true consumes it and, with `session_id`, records
/// the `mfa/recovery_code` claim. False counts a failure (the lockout of TOTP factors).
pub fn verify(
    client: &mut SpiClient<'_>,
    user_id: pgrx::Uuid,
    code: &str,
    session_id: Option<pgrx::Uuid>,
    ip_address: Option<pgrx::Inet>,
) -> bool {
    let row = run(client, &LOCK_SET, &[user_id.into()]);
    if row.is_empty() {
        raise(MfaError::NoRecoveryCodes);
    }
    let row = row.first();
    let set: pgrx::Uuid = row.get(1).or_raise().expect("id");
    let factor: pgrx::Uuid = row.get(2).or_raise().expect("mfa_factor_id");
    let failures: i32 = row.get(3).or_raise().unwrap_or(0);
    let locked: bool = row.get(4).or_raise().unwrap_or(false);
    let lock_ran_out: bool = row.get(5).or_raise().unwrap_or(false);
    let audit = |outcome: Outcome| {
        audit::factor_event(Event::RecoveryCodeVerification, user_id, factor, FactorType::RecoveryCode)
            .outcome(outcome)
            .session_id(session_id)
            .inet(&ip_address)
    };
    if locked || attempt_limits::locked(factor.as_bytes()) {
        audit::now(audit(Outcome::Locked));
        raise(MfaError::FactorLocked);
    }
    // Counted before the code is looked at, cleared on success (as for every factor).
    let counted = attempt_limits::count_attempt(factor.as_bytes(), failures, lock_ran_out);
    let consumed = match recovery::normalize(code) {
        Some(code) => {
            let mut candidates: Vec<String> = crate::secrets::recovery_code_keys()
                .iter()
                .map(|(id, k)| recovery::hash(set.as_bytes(), &code, Some((id.as_str(), k))))
                .collect();
            candidates.push(recovery::hash(set.as_bytes(), &code, None));
            let args: [DatumWithOid; 2] = [set.into(), candidates.clone().into()];
            let found = run(client, &CONSUME, &args);
            let stored: Option<String> = if found.is_empty() { None } else { found.first().get(1).or_raise() };
            stored.is_some_and(|s| candidates.iter().any(|c| recovery::same(c, &s)))
        }
        None => false,
    };
    if consumed {
        let args: [DatumWithOid; 4] = [set.into(), factor.into(), session_id.into(), ids::uuid_v7().into()];
        run(client, &SUCCEED, &args);
        attempt_limits::clear(factor.as_bytes());
        crate::session::claims_changed();
        audit::at_commit(audit(Outcome::Success));
    } else {
        let failures = i64::from(counted.failures);
        audit::now(audit(Outcome::Failure).traits(&Traits::new().int("failed_attempts", failures)));
        if counted.locked_until.is_some() {
            audit::now(
                audit::factor_event(Event::FactorLocked, user_id, factor, FactorType::RecoveryCode).traits(
                    &Traits::new()
                        .int("failed_attempts", failures)
                        .int("lockout_seconds", i64::from(guc::LOCKOUT_DURATION.get())),
                ),
            );
        }
        let args: [DatumWithOid; 4] = [
            set.into(),
            i32::try_from(counted.failures).unwrap_or(i32::MAX).into(),
            counted.locked_until.is_some().into(),
            guc::LOCKOUT_DURATION.get().into(),
        ];
        run(client, &FAIL, &args);
    }
    consumed
}

/// Removes the user's recovery codes (their factor, its set and codes, the claims it granted).
pub fn delete(user_id: pgrx::Uuid) {
    let factor = Spi::connect_mut(|client| {
        let f = run(client, &RECOVERY_FACTOR, &[user_id.into()]);
        if f.is_empty() {
            None
        } else {
            f.first().get::<pgrx::Uuid>(1).or_raise()
        }
    });
    if let Some(f) = factor {
        crate::factors::unenroll(f, |_, _, _| {});
        audit::at_commit(
            audit::factor_event(Event::RecoveryCodesDeleted, user_id, f, FactorType::RecoveryCode)
                .traits(&Traits::new().label("reason", "deleted")),
        );
    }
}

/// A new set of `count` (4..16) recovery codes for the user, replacing any earlier set. Only
/// for a user with a verified factor, and a session that is aal2 for them. The codes are
/// returned this once, grouped (`7kq4-m2xp-9dwe-j3ab`); only their hashes are stored.
#[pg_extern(volatile, security_definer)]
#[search_path(pg_catalog, pg_temp)]
fn generate_recovery_codes(
    user_id: Option<pgrx::Uuid>,
    session_id: Option<pgrx::Uuid>,
    count: default!(Option<i32>, 10),
) -> SetOfIterator<'static, String> {
    crate::error::require_writable("auth.generate_recovery_codes()");
    let user_id = required(user_id, "user_id");
    let count = required(count, "count");
    SetOfIterator::new(generate(user_id, session_id, count))
}

/// Verifies one of the user's recovery codes (hyphens, spaces and case ignored). True: the
/// code is consumed and, with `session_id`, the session's `mfa/recovery_code` claim recorded
/// (aal2). False: wrong or used, counted; after mfa_auth.max_failed_attempts the user's codes
/// are locked for mfa_auth.lockout_duration. `ip_address` is accepted for the same call shape
/// as the other verifications, and recorded in the audit trail.
#[pg_extern(volatile, security_definer)]
#[search_path(pg_catalog, pg_temp)]
fn verify_recovery_code(
    user_id: Option<pgrx::Uuid>,
    code: Option<&str>,
    ip_address: default!(Option<pgrx::Inet>, "NULL"),
    session_id: default!(Option<pgrx::Uuid>, "NULL"),
) -> bool {
    crate::error::require_writable("auth.verify_recovery_code()");
    let user_id = required(user_id, "user_id");
    let code = required(code, "code");
    Spi::connect_mut(|client| verify(client, user_id, code, session_id, ip_address))
}

/// Removes the user's recovery codes (nothing when there are none).
#[pg_extern(volatile, security_definer)]
#[search_path(pg_catalog, pg_temp)]
fn delete_recovery_codes(user_id: Option<pgrx::Uuid>) {
    crate::error::require_writable("auth.delete_recovery_codes()");
    delete(required(user_id, "user_id"));
}

/// Self-service: a new set for the current user, from an aal2 session.
#[pg_extern(volatile, security_definer)]
#[search_path(pg_catalog, pg_temp)]
fn generate_my_recovery_codes(count: default!(Option<i32>, 10)) -> SetOfIterator<'static, String> {
    crate::error::require_writable("auth.generate_my_recovery_codes()");
    let count = required(count, "count");
    let (user_id, session) = crate::self_service::me("auth.generate_my_recovery_codes");
    SetOfIterator::new(generate(user_id, session, count))
}

/// Self-service: verifies a recovery code of the current user for auth.session_id().
#[pg_extern(volatile, security_definer)]
#[search_path(pg_catalog, pg_temp)]
fn mfa_verify_recovery_code(code: Option<&str>) -> bool {
    crate::error::require_writable("auth.mfa_verify_recovery_code()");
    let code = required(code, "code");
    crate::attempt_limits::require_durable_or_autocommit("auth.mfa_verify_recovery_code");
    let (user_id, session) = crate::self_service::me("auth.mfa_verify_recovery_code");
    Spi::connect_mut(|client| verify(client, user_id, code, session, None))
}
