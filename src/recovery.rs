//! Recovery codes: a set of single-use codes per user that raise a session to aal2 when the
//! user's authenticator is lost. As in Supabase Auth, the set belongs to a `recovery_code`
//! factor of the user (created verified), so a claim earned with a code is bound to that
//! factor like every MFA claim, and removing the factor (or the user's last real factor)
//! removes the set. This module generates and deletes sets; a code is verified by the
//! verification pipeline (src/factor_kinds/recovery_code.rs). The code format and hashing are
//! the core's (mfa_auth_core::recovery_code).

use pgrx::datum::DatumWithOid;
use pgrx::prelude::*;

use crate::attempt_limits;
use crate::audit::{self, EntryExt, Event, Traits};
use crate::pg::error::{raise, MfaError, OrRaise};
use crate::pg::ids;
use crate::pg::spi::{fresh_row, lock_user, run, Stmt};
use mfa_auth_core::factor_type::FactorType;
use mfa_auth_core::recovery_code as recovery;

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
    // The enrollment hook is asked before anything is generated, for a first set as for a new one.
    crate::hooks::before_enrollment(user_id, FactorType::RecoveryCode, None, None, session_id);
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
        crate::factors::insert_factor(factor, user_id, None, FactorType::RecoveryCode, None, None, session_id);
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
