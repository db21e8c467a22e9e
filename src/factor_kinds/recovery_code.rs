//! Recovery codes as a factor kind: a user's set of single-use codes, verified through the
//! same pipeline as every factor (src/verification/), by user instead of by challenge. The
//! set is the row that counts failures and holds the lock; a success consumes the code and,
//! with a session, records the `mfa/recovery_code` claim bound to the user's recovery-code
//! factor. Generating and deleting sets is src/recovery.rs; the code format and hashing are
//! the core's (mfa_auth_core::recovery_code).

use pgrx::datum::DatumWithOid;
use pgrx::prelude::*;
use pgrx::spi::SpiClient;

use super::{code, Checked, Event, FactorKind, FactorRow, FactorType, Issued, Response, Via};
use crate::factor_kinds::record::{failure_statement, success_statement};
use crate::factor_kinds::row::Locked;
use crate::pg::error::{raise, MfaError, OrRaise};
use crate::pg::spi::{run, Stmt};
use mfa_auth_core::recovery_code as recovery;

/// Consumes the unused code whose hash is one of `$2` (one per configured key): one look-up
/// on (mfa_recovery_code_set_id, code_hash).
const CONSUME: Stmt = Stmt {
    sql: "UPDATE auth.mfa_recovery_codes SET consumed_at = pg_catalog.clock_timestamp()
           WHERE mfa_recovery_code_set_id = $1 AND code_hash = ANY ($2) AND consumed_at IS NULL
          RETURNING code_hash",
    args: &[pg_sys::UUIDOID, pg_sys::TEXTARRAYOID],
};

/// Success: the set's count and lock reset (`$1` is the set; `$3`, `$7`, `$8` unused).
const SUCCEED: Stmt = success_statement!(
    "c AS (
              UPDATE auth.mfa_recovery_code_sets
                 SET failed_verification_count = 0, verification_locked_until = NULL,
                     updated_at = pg_catalog.clock_timestamp()
               WHERE id = $1 RETURNING updated_at AS verified_at
          )"
);
/// Failure: counted on the set (`$5`, `$6` unused).
const FAIL: Stmt =
    failure_statement!("", "auth.mfa_recovery_code_sets", "failed_verification_count", "verification_locked_until", "");

pub struct RecoveryCodes;

impl FactorKind for RecoveryCodes {
    fn via(&self) -> Via {
        Via::RecoveryCode
    }

    fn audit_event(&self, _: &Locked) -> Event {
        Event::RecoveryCodeVerification
    }

    /// Recovery codes have no challenges.
    fn issue(&self, _: &mut SpiClient<'_>, _: &FactorRow, _: bool) -> Issued {
        raise(MfaError::WrongVerifier(FactorType::RecoveryCode.sql_name()))
    }

    /// Consumes the code when it is one of the set's unused ones (hyphens, spaces and case
    /// ignored; anything that is no code at all is a wrong one, counted like it).
    fn check(&self, client: &mut SpiClient<'_>, row: &Locked, response: &Response<'_>) -> Checked {
        let Some(code) = recovery::normalize(code(response)) else { return Checked::wrong() };
        let set = row.answered;
        let mut candidates: Vec<String> = crate::secrets::recovery_code_keys()
            .iter()
            .map(|(id, k)| recovery::hash(set.as_bytes(), &code, Some((id.as_str(), k))))
            .collect();
        candidates.push(recovery::hash(set.as_bytes(), &code, None));
        let args: [DatumWithOid; 2] = [set.into(), candidates.clone().into()];
        let found = run(client, &CONSUME, &args);
        let stored: Option<String> = if found.is_empty() { None } else { found.first().get(1).or_raise() };
        Checked { ok: stored.is_some_and(|s| candidates.iter().any(|c| recovery::same(c, &s))), ..Checked::wrong() }
    }

    fn succeed(&self, client: &mut SpiClient<'_>, args: &[DatumWithOid<'_>]) {
        run(client, &SUCCEED, args);
    }

    fn fail(&self, client: &mut SpiClient<'_>, args: &[DatumWithOid<'_>]) {
        run(client, &FAIL, args);
    }
}
