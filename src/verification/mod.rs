//! The verification pipeline: every verification of every factor kind (a TOTP or phone code,
//! a WebAuthn response, a recovery code; by challenge, by factor, or self-service) runs
//! [`verify`], which drives load → refuse → count → decide → record, asking the factor kind
//! (src/factor_kinds/) only what differs: how a response is parsed and checked, and which
//! statement writes the outcome (src/factor_kinds/record.rs spells their shared parts).
//!
//! Verification is two statements inside one SQL call: one that locks the rows and reads
//! everything the decision needs ([`row::Lookup::load`]), and one that writes the outcome. A
//! wrong response returns false after counting the failure, so the count is committed with the
//! caller's transaction instead of being rolled back by an error.

use pgrx::datum::DatumWithOid;
use pgrx::spi::SpiClient;

use crate::attempt_limits;
use crate::audit::{self, EntryExt, Event, Outcome, Traits};
use crate::factor_kinds::row::{Locked, Lookup};
use crate::factor_kinds::{self, Checked, FactorKind, Via};
use crate::hooks::{Decision, Hook, VerificationEvent};
use crate::pg::error::{raise, MfaError};
use crate::pg::ids;
use mfa_auth_core::attempts::Counted;
use mfa_auth_core::verification::{outcome, refusal, Refusal};

/// One verification attempt, as the SQL function that was called describes it.
pub struct Attempt<'a> {
    /// Which rows it is of.
    pub of: Lookup,
    /// The code, or the WebAuthn response's JSON.
    pub response: &'a str,
    /// The caller's address: given, a challenge made for another address is refused.
    pub ip_address: Option<pgrx::Inet>,
    /// The session that earns the AMR claim (None: no claim is recorded).
    pub session_id: Option<pgrx::Uuid>,
    /// Which verification function was called.
    pub via: Via,
    /// Self-service: the current user, whose rows they must be (another user's challenge is
    /// answered like one that does not exist).
    pub owner: Option<pgrx::Uuid>,
}

/// Verifies `attempt`: true, verified and recorded; false, a wrong response, counted. Raises
/// when the attempt may not be evaluated at all (recorded in the audit trail first).
pub fn verify(client: &mut SpiClient<'_>, attempt: &Attempt<'_>) -> bool {
    let row = attempt.of.load(client, attempt.ip_address.clone());
    if attempt.owner.is_some_and(|o| o != row.user_id) {
        raise(MfaError::ChallengeNotFound);
    }
    let kind = factor_kinds::of(row.factor_type);
    refuse(client, attempt, &row, kind);
    // The response's structure is checked before anything is counted: malformed input is an
    // error (22023), not an attempt.
    let response = kind.parse(&row, attempt.response);
    // Counted before the response is evaluated and cleared on success: from here on neither a
    // ROLLBACK nor an error can take this attempt back (and with no room in the shared table
    // the attempt is refused, 53400, before anything is evaluated). The row's count restarts
    // after a lock that has run out (a live lock was refused above).
    let counted = attempt_limits::count_attempt(row.counted_in.as_bytes(), row.failed_attempts, row.lock_ran_out);
    let checked = kind.check(client, &row, &response);
    // The policy hook sees the checked response before anything is recorded: a reject or a
    // fault raises here (its event recorded first, surviving the caller's ROLLBACK).
    if crate::hooks::is_set(Hook::Verification) {
        consult_hook(attempt, &row, checked.ok, &counted);
    }
    let ended = outcome(checked.ok, checked.replay);
    if checked.ok {
        let args: [DatumWithOid; 8] = [
            row.answered.into(),
            row.factor_id.into(),
            checked.step.into(),
            attempt.session_id.into(),
            row.factor_type.amr_method().into(),
            ids::uuid_v7().into(),
            checked.resealed.clone().into(),
            checked.credential.clone().into(),
        ];
        kind.succeed(client, &args);
        attempt_limits::clear(row.counted_in.as_bytes());
        crate::session::claims_changed();
        audited(attempt, &row, kind, ended, None);
    } else {
        audited(attempt, &row, kind, ended, Some(&counted));
        let Checked { resealed, .. } = checked;
        let args: [DatumWithOid; 6] = [
            row.counted_in.into(),
            i32::try_from(counted.failures).unwrap_or(i32::MAX).into(),
            counted.locked_until.is_some().into(),
            crate::settings::lockout_duration().into(),
            resealed.into(),
            row.answered.into(),
        ];
        kind.fail(client, &args);
    }
    checked.ok
}

/// Calls mfa_auth.verification_hook with the attempt's event (Supabase Auth's fields, plus
/// session_id, failed_attempts, ip_address and challenge_id). `continue` returns; `reject`
/// records the rejection, signs the user out everywhere and raises 28000 with the hook's
/// message; a fault (the hook raised, timed out, answered no decision) is recorded, logged
/// and raises 39000. Neither counts as a success: the attempt stays counted and nothing of
/// the verification is recorded.
fn consult_hook(attempt: &Attempt<'_>, row: &Locked, valid: bool, counted: &Counted) {
    // The count includes this attempt; a right response is not a failure.
    let failed = i64::from(counted.failures) - i64::from(valid);
    let event = VerificationEvent {
        factor_id: uuid::Uuid::from_bytes(*row.factor_id.as_bytes()),
        factor_type: row.factor_type.sql_name(),
        user_id: uuid::Uuid::from_bytes(*row.user_id.as_bytes()),
        valid,
        session_id: attempt.session_id.map(|s| uuid::Uuid::from_bytes(*s.as_bytes())),
        failed_attempts: failed.max(0),
        ip_address: attempt.ip_address.as_ref().map(|i| i.0.as_str()),
        challenge_id: row.challenge_id.map(|c| uuid::Uuid::from_bytes(*c.as_bytes())),
    };
    let about = |e: Event, o: Outcome| {
        let mut traits =
            Traits::new().label("valid", if valid { "true" } else { "false" }).int("failed_attempts", failed.max(0));
        if let Some(id) = row.challenge_id {
            traits = traits.label("challenge_id", &id.to_string());
        }
        audit::factor_event(e, row.user_id, row.factor_id, row.factor_type)
            .outcome(o)
            .session_id(attempt.session_id)
            .inet(&attempt.ip_address)
            .traits(&traits)
    };
    match crate::hooks::call(Hook::Verification, event.to_json()) {
        Ok(None | Some(Decision::Continue)) => {}
        // The attempt stays counted: its count reaches the row with the event, as a wrong
        // response's does (the caller's failure statement never runs: this raises).
        Ok(Some(Decision::Reject(message))) => {
            audit::now_signing_out(
                about(Event::VerificationRejected, Outcome::Rejected).counting(durable_count(row, counted)),
            );
            crate::session::claims_changed();
            raise(MfaError::VerificationRejected(message));
        }
        Err(fault) => {
            audit::now_counting(about(Event::HookFailed, Outcome::Error), durable_count(row, counted));
            crate::hooks::log_fault(&fault);
            raise(MfaError::HookFailed {
                setting: fault.hook.setting(),
                reason: fault.reason,
                sqlstate: fault.sqlstate,
            });
        }
    }
}

/// Raises when the attempt may not be evaluated at all: the wrong verification function for
/// the kind; then the refusals of the rows' state in their order
/// (`mfa_auth_core::verification::refusal`: a locked factor refuses everything, its row's
/// lock or the shared-memory one a rolled-back failure left); then the entitlement rule.
fn refuse(client: &mut SpiClient<'_>, attempt: &Attempt<'_>, row: &Locked, kind: &dyn FactorKind) {
    if kind.via() != attempt.via {
        raise(MfaError::WrongVerifier(row.factor_type.sql_name()));
    }
    let mut state = row.state();
    state.locked |= attempt_limits::locked(row.counted_in.as_bytes());
    if let Some(r) = refusal(&state) {
        // Recorded whatever the caller does with the error.
        audited(attempt, row, kind, r.outcome(), None);
        raise(match r {
            Refusal::Locked => MfaError::FactorLocked,
            Refusal::AlreadyVerified => MfaError::ChallengeAlreadyVerified,
            Refusal::Expired => MfaError::ChallengeExpired,
            Refusal::IpMismatch => MfaError::IpMismatch,
        });
    }
    // An unverified factor of a user who has another verified one: only an aal2 session of
    // that user may verify it (otherwise a password-only session could add its own factor
    // and raise itself to aal2). No response is evaluated and nothing is counted.
    if !row.factor_verified {
        crate::factors::require_entitled(
            client,
            row.user_id,
            attempt.session_id,
            Some(row.factor_id),
            "verify another factor",
        );
    }
}

/// The audit trail of one outcome: the verification's event, and what it caused. A success
/// is recorded when the caller's transaction commits (and, for a factor's first one, its
/// `factor_verified`); a failure or a refusal at once, whatever the caller does next (and a
/// failure that reached the limit, its `factor_locked`). `counted`: a failure's count, which
/// the audit writer also writes into the factor's row (or its recovery-code set's) in its own
/// transaction, so a rolled-back failure survives a crash and reaches a standby.
fn audited(attempt: &Attempt<'_>, row: &Locked, kind: &dyn FactorKind, outcome: Outcome, counted: Option<&Counted>) {
    let about = |event: Event| audit::factor_event(event, row.user_id, row.factor_id, row.factor_type);
    let mut traits = Traits::new();
    if let Some(c) = counted {
        traits = traits.int("failed_attempts", i64::from(c.failures));
    }
    if let Some(id) = row.challenge_id {
        traits = traits.label("challenge_id", &id.to_string());
    }
    let entry = about(kind.audit_event(row))
        .outcome(outcome)
        .session_id(attempt.session_id)
        .inet(&attempt.ip_address)
        .traits(&traits);
    if outcome == Outcome::Success {
        audit::at_commit(entry);
        if !row.factor_verified {
            audit::at_commit(about(Event::FactorVerified));
        }
        return;
    }
    match counted {
        // The count reaches the table through the writer too, whatever the caller does.
        Some(c) => audit::now_counting(entry, durable_count(row, c)),
        None => audit::now(entry),
    }
    if let Some(c) = counted.filter(|c| c.locked_until.is_some()) {
        audit::now(
            about(Event::FactorLocked).traits(
                &Traits::new()
                    .int("failed_attempts", i64::from(c.failures))
                    .int("lockout_seconds", i64::from(crate::settings::lockout_duration())),
            ),
        );
    }
}

/// What the audit writer writes into the row that counts `row`'s failures (the factor, or its
/// recovery-code set) for an attempt counted as `counted`.
fn durable_count(row: &Locked, counted: &Counted) -> audit::Count {
    audit::Count {
        failures: counted.failures,
        locked_until_us: counted.locked_until,
        in_recovery_set: row.factor_type == mfa_auth_core::factor_type::FactorType::RecoveryCode,
    }
}
