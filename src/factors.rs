//! Enrolling and removing factors.

use pgrx::datum::DatumWithOid;
use pgrx::prelude::*;
use pgrx::spi::SpiClient;

use crate::audit::{self, Event, Traits};
use crate::error::{raise, required, MfaError, OrRaise};
use crate::factor_types::FactorType;
use crate::otp::{phone::is_e164, qr, secret, uri, OtpParams};
use crate::spi_util::{fresh_row, lock_user, run, Stmt};

/// Supabase Auth's limit.
pub const MAX_FACTORS_PER_USER: i64 = 10;

/// What the per-user limits need (the factor count, name and phone uniqueness), read under
/// the per-user lock with a snapshot taken after it ([`fresh_row`]).
const USER_FACTORS: Stmt = Stmt {
    sql: "SELECT (SELECT pg_catalog.count(*) FROM auth.mfa_factors WHERE user_id = $1),
                 EXISTS (SELECT 1 FROM auth.mfa_factors WHERE user_id = $1
                          AND pg_catalog.btrim($2) <> '' AND friendly_name = $2),
                 EXISTS (SELECT 1 FROM auth.mfa_factors WHERE user_id = $1 AND phone = $3)",
    args: &[pg_sys::UUIDOID, pg_sys::TEXTOID, pg_sys::TEXTOID],
};

const INSERT_FACTOR: Stmt = Stmt {
    sql: "INSERT INTO auth.mfa_factors (user_id, friendly_name, factor_type, secret, phone, id)
          VALUES ($1, $2, $3::auth.factor_type, $4, $5, $6) RETURNING id",
    args: &[pg_sys::UUIDOID, pg_sys::TEXTOID, pg_sys::TEXTOID, pg_sys::TEXTOID, pg_sys::TEXTOID, pg_sys::UUIDOID],
};

/// Whether the user has a verified factor other than `$3`, and whether session `$2` is
/// aal2 for them; read under the per-user lock with a snapshot taken after it, so that two
/// factors cannot both be verified as "the first" at once (0.2.0 read it in the statement
/// that took the lock, whose snapshot predates the wait).
const ENTITLEMENT: Stmt = Stmt {
    sql: "SELECT EXISTS (SELECT 1 FROM auth.mfa_factors
                          WHERE user_id = $1 AND status = 'verified' AND id IS DISTINCT FROM $3),
                 EXISTS (SELECT 1 FROM auth.mfa_verified_claims v WHERE v.session_id = $2 AND v.user_id = $1)",
    args: &[pg_sys::UUIDOID, pg_sys::UUIDOID, pg_sys::UUIDOID],
};

/// The trust rule: once a user has a verified factor, adding or verifying another one, or
/// removing a verified one through self-service, needs a session that is already aal2 for
/// that user. `except` is the factor being acted on (not counted as "another" one). Raises
/// 42501 naming `what` was refused.
pub fn require_entitled(
    client: &mut SpiClient<'_>,
    user_id: pgrx::Uuid,
    session_id: Option<pgrx::Uuid>,
    except: Option<pgrx::Uuid>,
    what: &'static str,
) {
    lock_user(client, user_id);
    let (has_verified, aal2) =
        fresh_row(client, &ENTITLEMENT, &[user_id.into(), session_id.into(), except.into()], |row| {
            (row.get::<bool>(1).unwrap_or(true), row.get::<bool>(2).unwrap_or(false))
        });
    if has_verified && !aal2 {
        raise(MfaError::Aal2Required(what));
    }
}

/// Locks a factor row against concurrent verification and reads its owner and status.
const LOCK_FOR_UNENROLL: Stmt = Stmt {
    sql: "SELECT user_id, status = 'verified' FROM auth.mfa_factors WHERE id = $1 FOR UPDATE",
    args: &[pg_sys::UUIDOID],
};

/// Deletes a factor, its challenges, its claim links, and the MFA claims that no other
/// factor backs, so sessions that were aal2 through it lose aal2; for a recovery-code factor,
/// its set of codes too.
macro_rules! unenroll {
    ($recovery_sets:literal) => {
        Stmt {
            sql: concat!(
                "WITH granted AS (
              SELECT session_id, authentication_method FROM auth.mfa_amr_claim_factors WHERE factor_id = $1
          ), orphaned AS (
              SELECT g.session_id, g.authentication_method FROM granted g
               WHERE NOT EXISTS (SELECT 1 FROM auth.mfa_amr_claim_factors l
                                  WHERE l.session_id = g.session_id
                                    AND l.authentication_method = g.authentication_method
                                    AND l.factor_id <> $1)
          ), dropped_claims AS (
              DELETE FROM auth.mfa_amr_claims a USING orphaned o
               WHERE a.session_id = o.session_id AND a.authentication_method = o.authentication_method
              RETURNING 1
          ), dropped_links AS (
              DELETE FROM auth.mfa_amr_claim_factors WHERE factor_id = $1
          ), dropped_challenges AS (
              DELETE FROM auth.mfa_challenges WHERE factor_id = $1
          )",
                $recovery_sets,
                " DELETE FROM auth.mfa_factors WHERE id = $1
                  RETURNING user_id, factor_type::text, (SELECT pg_catalog.count(*) FROM dropped_claims)"
            ),
            args: &[pg_sys::UUIDOID],
        }
    };
}
const UNENROLL: Stmt = unenroll!(
    ", dropped_codes AS (
         DELETE FROM auth.mfa_recovery_codes
          WHERE mfa_recovery_code_set_id IN (SELECT id FROM auth.mfa_recovery_code_sets WHERE mfa_factor_id = $1)
     ), dropped_set AS (
         DELETE FROM auth.mfa_recovery_code_sets WHERE mfa_factor_id = $1
     )"
);
/// 0.1.0's tables (before `ALTER EXTENSION mfa_auth UPDATE`): no recovery codes.
const UNENROLL_0_1: Stmt = unenroll!("");

/// The user's recovery-code factor when no other verified factor is left: recovery codes
/// back a factor up, so they go with the last one.
/// Read after the per-user lock with a fresh snapshot ([`fresh_row`]): a set generated by a
/// transaction that held the lock before this one is seen (and, at REPEATABLE READ, its row
/// locked `FOR UPDATE` against the transaction's snapshot raises 40001).
const ORPHANED_RECOVERY_CODES: Stmt = Stmt {
    sql: "SELECT (SELECT f.id FROM auth.mfa_factors f
           WHERE f.user_id OPERATOR(pg_catalog.=) $1 AND f.factor_type::pg_catalog.text OPERATOR(pg_catalog.=) 'recovery_code'
             AND NOT EXISTS (SELECT 1 FROM auth.mfa_factors g
                              WHERE g.user_id OPERATOR(pg_catalog.=) $1
                                AND g.factor_type::pg_catalog.text OPERATOR(pg_catalog.<>) 'recovery_code'
                                AND g.status OPERATOR(pg_catalog.=) 'verified'::auth.factor_status)
           FOR UPDATE OF f)",
    args: &[pg_sys::UUIDOID],
};

/// Bounds a friendly name before anything is built from it (it may become the otpauth
/// account name, and is stored and indexed).
pub fn check_friendly_name(friendly_name: Option<&str>) {
    if let Some(name) = friendly_name {
        crate::otp::check_len("friendly_name", name, crate::otp::limits::FRIENDLY_NAME).or_raise();
    }
}

fn non_blank(s: Option<&str>) -> Option<&str> {
    s.filter(|v| !v.trim().is_empty())
}

/// Checks the per-user limits under a per-user lock, then inserts the factor.
pub fn insert_factor(
    id: pgrx::Uuid,
    user_id: pgrx::Uuid,
    friendly_name: Option<&str>,
    factor_type: FactorType,
    secret: Option<&str>,
    phone: Option<&str>,
) -> pgrx::Uuid {
    Spi::connect_mut(|client| {
        lock_user(client, user_id);
        let (count, name_taken, phone_taken) =
            fresh_row(client, &USER_FACTORS, &[user_id.into(), friendly_name.into(), phone.into()], |row| {
                (
                    row.get::<i64>(1).unwrap_or(0),
                    row.get::<bool>(2).unwrap_or(false),
                    row.get::<bool>(3).unwrap_or(false),
                )
            });
        if count >= MAX_FACTORS_PER_USER {
            raise(MfaError::TooManyFactors(MAX_FACTORS_PER_USER));
        }
        if name_taken {
            raise(MfaError::DuplicateFactor("a factor with this friendly_name already exists for this user"));
        }
        if phone_taken {
            raise(MfaError::DuplicateFactor("a phone factor with this number already exists for this user"));
        }
        let id = run(
            client,
            &INSERT_FACTOR,
            &[
                user_id.into(),
                friendly_name.into(),
                factor_type.sql_name().into(),
                secret.into(),
                phone.into(),
                id.into(),
            ],
        );
        let id = id.first().get::<pgrx::Uuid>(1).or_raise().expect("INSERT ... RETURNING id");
        audit::at_commit(audit::factor_event(Event::FactorEnrolled, user_id, id, factor_type));
        id
    })
}

/// The work of enroll_totp and enroll_my_totp; `fallback_account` names the account when
/// neither account_name nor friendly_name does.
pub fn enroll_totp_for(
    user_id: pgrx::Uuid,
    friendly_name: Option<&str>,
    issuer: Option<&str>,
    account_name: Option<&str>,
    fallback_account: &str,
) -> (pgrx::Uuid, String, String, String) {
    check_friendly_name(friendly_name);
    let issuer = non_blank(issuer);
    let account = non_blank(account_name).or(non_blank(friendly_name)).unwrap_or(fallback_account);
    let params = OtpParams::default();
    let secret = secret::generate(secret::DEFAULT_SECRET_BYTES as i64).or_raise();
    // Build the URI before inserting: a bad issuer/account fails with no row written.
    let uri = uri::build_totp(&secret, account, issuer, params.algorithm, params.digits, params.period).or_raise();
    let qr = qr::to_text(&uri, false).or_raise();
    let id = crate::ids::new_factor_id();
    // Stored sealed with the current key of mfa_auth.encryption_keys (plaintext without one).
    let stored = crate::secrets::seal_new(&id, &secret);
    insert_factor(id, user_id, friendly_name, FactorType::Totp, Some(&stored), None);
    (id, secret, uri, qr)
}

/// Enrolls a new, unverified TOTP factor with a fresh 20-byte secret. Returns the
/// secret once, with its otpauth URI and a QR code of it that draws in psql.
#[pg_extern(volatile, security_definer)]
#[search_path(pg_catalog, pg_temp)]
fn enroll_totp(
    user_id: Option<pgrx::Uuid>,
    friendly_name: default!(Option<&str>, "NULL"),
    issuer: default!(Option<&str>, "NULL"),
    account_name: default!(Option<&str>, "NULL"),
) -> TableIterator<'static, (name!(factor_id, pgrx::Uuid), name!(secret, String), name!(uri, String), name!(qr, String))>
{
    crate::error::require_writable("auth.enroll_totp()");
    let user_id = required(user_id, "user_id");
    let user_text = user_id.to_string();
    let (id, secret, uri, qr) = enroll_totp_for(user_id, friendly_name, issuer, account_name, &user_text);
    TableIterator::once((id, secret, uri, qr))
}

/// Enrolls a new, unverified phone factor for an E.164 number.
#[pg_extern(volatile, security_definer)]
#[search_path(pg_catalog, pg_temp)]
fn enroll_phone(
    user_id: Option<pgrx::Uuid>,
    phone: Option<&str>,
    friendly_name: default!(Option<&str>, "NULL"),
) -> pgrx::Uuid {
    crate::error::require_writable("auth.enroll_phone()");
    let user_id = required(user_id, "user_id");
    let phone = required(phone, "phone");
    check_friendly_name(friendly_name);
    if !is_e164(phone) {
        raise(MfaError::invalid("phone", "must be an E.164 number: '+', country code and number, 15 digits at most"));
    }
    insert_factor(crate::ids::new_factor_id(), user_id, friendly_name, FactorType::Phone, None, Some(phone))
}

/// Removes a factor with everything it granted: the one implementation behind
/// unenroll_factor and unenroll_my_factor. `allow(client, owner, verified)` may refuse
/// (raise) once the factor's row is locked; a missing factor raises "factor not found".
///
/// Two statements on purpose: the first waits for a verification of the factor that is in
/// flight (it holds the row `FOR UPDATE`) to commit or roll back; the second runs with a
/// snapshot taken after that, so it sees, and deletes, the claim that verification made.
/// (In one statement the claims would be read from a snapshot older than the wait, and a
/// claim committed meanwhile would survive its factor.)
pub fn unenroll(factor_id: pgrx::Uuid, allow: impl FnOnce(&mut SpiClient<'_>, pgrx::Uuid, bool)) {
    Spi::connect_mut(|client| {
        let args: [DatumWithOid; 1] = [factor_id.into()];
        let row = run(client, &LOCK_FOR_UNENROLL, &args);
        if row.is_empty() {
            raise(MfaError::FactorNotFound);
        }
        let row = row.first();
        let owner: pgrx::Uuid = row.get(1).or_raise().expect("user_id");
        let verified: bool = row.get(2).or_raise().unwrap_or(true);
        // The per-user lock, as every change of a user's factors takes it: a recovery-code
        // generation still open now (it holds the lock) commits before this goes on, and its
        // set is removed with the last factor below instead of outliving it.
        lock_user(client, owner);
        allow(client, owner, verified);
        audit_unenrolled(factor_id, run(client, crate::challenges::for_schema(&UNENROLL, &UNENROLL_0_1), &args));
        // Removing the user's last verified factor removes their recovery codes too.
        let orphaned: Option<pgrx::Uuid> =
            fresh_row(client, &ORPHANED_RECOVERY_CODES, &[owner.into()], |row| row.get(1));
        if let Some(recovery) = orphaned {
            let args: [DatumWithOid; 1] = [recovery.into()];
            if run(client, &LOCK_FOR_UNENROLL, &args).is_empty() {
                // At REPEATABLE READ: a set generated after this transaction's snapshot, which
                // it can neither see nor delete (left alone, it would outlive the last factor).
                raise(MfaError::SerializationFailure("the user's recovery codes"));
            }
            run(client, &UNENROLL, &args);
            audit::at_commit(
                audit::factor_event(Event::RecoveryCodesDeleted, owner, recovery, FactorType::RecoveryCode)
                    .traits(&Traits::new().label("reason", "last_factor_unenrolled")),
            );
            crate::attempt_limits::clear(recovery.as_bytes());
        }
    });
    crate::attempt_limits::clear(factor_id.as_bytes());
    crate::session::claims_changed();
}

/// The audit events of an unenroll (UNENROLL's row: user, type, claims removed).
fn audit_unenrolled(factor_id: pgrx::Uuid, row: pgrx::spi::SpiTupleTable<'_>) {
    if row.is_empty() {
        return;
    }
    let row = row.first();
    let user: pgrx::Uuid = row.get(1).or_raise().expect("user_id");
    let factor_type = FactorType::parse(&row.get::<String>(2).or_raise().unwrap_or_default());
    let claims: i64 = row.get(3).or_raise().unwrap_or(0);
    audit::at_commit(audit::factor_event(Event::FactorUnenrolled, user, factor_id, factor_type));
    if claims > 0 {
        audit::at_commit(
            audit::factor_event(Event::ClaimsRemoved, user, factor_id, factor_type)
                .traits(&Traits::new().int("claims", claims)),
        );
    }
}

/// Deletes a factor, its challenges, and the MFA claims it granted. Removing the user's last
/// verified factor also deletes their recovery codes (they back a factor up).
#[pg_extern(volatile, security_definer)]
#[search_path(pg_catalog, pg_temp)]
fn unenroll_factor(factor_id: Option<pgrx::Uuid>) {
    crate::error::require_writable("auth.unenroll_factor()");
    unenroll(required(factor_id, "factor_id"), |_, _, _| {});
}

const UNLOCK: Stmt = Stmt {
    sql:
        "UPDATE auth.mfa_factors SET failed_attempts = 0, locked_until = NULL, updated_at = pg_catalog.clock_timestamp()
           WHERE id = $1 RETURNING user_id, factor_type::text",
    args: &[pg_sys::UUIDOID],
};

/// Lifts a factor's lockout and forgets its failed attempts, in its row and in the
/// shared-memory attempt table.
#[pg_extern(volatile, security_definer)]
#[search_path(pg_catalog, pg_temp)]
fn unlock_factor(factor_id: Option<pgrx::Uuid>) {
    crate::error::require_writable("auth.unlock_factor()");
    let factor_id = required(factor_id, "factor_id");
    let (user, factor_type) = Spi::connect_mut(|client| {
        let args: [DatumWithOid; 1] = [factor_id.into()];
        let row = run(client, &UNLOCK, &args);
        if row.is_empty() {
            raise(MfaError::FactorNotFound);
        }
        let row = row.first();
        let user: pgrx::Uuid = row.get(1).or_raise().expect("user_id");
        (user, FactorType::parse(&row.get::<String>(2).or_raise().unwrap_or_default()))
    });
    audit::at_commit(audit::factor_event(Event::FactorUnlocked, user, factor_id, factor_type));
    crate::attempt_limits::clear(factor_id.as_bytes());
}
