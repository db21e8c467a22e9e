//! Enrolling, unlocking and removing factors, for a given user (service code) and for the
//! current one (self-service: every statement restricted to auth.uid(); once the user has a
//! verified factor, enrolling another or removing a verified one needs a session that is aal2
//! for the user, as in Supabase Auth).

use pgrx::datum::DatumWithOid;
use pgrx::prelude::*;
use pgrx::spi::SpiClient;

use crate::audit::{self, Event, Traits};
use crate::otp::{qr, secret, uri, OtpParams};
use crate::pg::error::{raise, MfaError, OrRaise};
use crate::pg::spi::{fresh_row, lock_user, run, Stmt};
use crate::pg::types::factor_type as parse_type;
use mfa_auth_core::factor_type::FactorType;
use mfa_auth_core::phone::is_e164;

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

/// Whether user `$1` has no verified factor, or session `$2` verified one of theirs less than
/// `$3` seconds before the statement started.
const FRESH: Stmt = Stmt {
    sql:
        "SELECT NOT EXISTS (SELECT 1 FROM auth.mfa_factors WHERE user_id = $1 AND status = 'verified')
              OR EXISTS (SELECT 1 FROM auth.mfa_verified_claims v
                          WHERE v.session_id = $2 AND v.user_id = $1
                            AND v.updated_at > pg_catalog.statement_timestamp() - pg_catalog.make_interval(secs => $3))",
    args: &[pg_sys::UUIDOID, pg_sys::UUIDOID, pg_sys::FLOAT8OID],
};

/// mfa_auth.reverify_window: when set, a self-service change of a user's factors (enrolling
/// another factor, removing one, generating recovery codes) needs the session to have
/// verified a factor of the user within the window (42501 naming `what` otherwise). Off (0)
/// by default; the service functions never ask.
pub fn require_fresh(
    client: &mut SpiClient<'_>,
    user_id: pgrx::Uuid,
    session_id: Option<pgrx::Uuid>,
    what: &'static str,
) {
    let window = crate::settings::reverify_window();
    if window <= 0 {
        return;
    }
    let fresh = fresh_row(client, &FRESH, &[user_id.into(), session_id.into(), f64::from(window).into()], |row| {
        row.get::<bool>(1).unwrap_or(false)
    });
    if !fresh {
        raise(MfaError::ReverifyRequired(what));
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
const UNENROLL: Stmt = Stmt {
    sql: "WITH granted AS (
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
          ), dropped_codes AS (
              DELETE FROM auth.mfa_recovery_codes
               WHERE mfa_recovery_code_set_id IN (SELECT id FROM auth.mfa_recovery_code_sets WHERE mfa_factor_id = $1)
          ), dropped_set AS (
              DELETE FROM auth.mfa_recovery_code_sets WHERE mfa_factor_id = $1
          )
          DELETE FROM auth.mfa_factors WHERE id = $1
          RETURNING user_id, factor_type::text, (SELECT pg_catalog.count(*) FROM dropped_claims)",
    args: &[pg_sys::UUIDOID],
};

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

/// Asks mfa_auth.enrollment_hook (when set), checks the per-user limits under a per-user
/// lock, then inserts the factor. `session`: the self-service caller's session (None for the
/// service functions). A recovery-code factor is asked for by its generation (src/recovery.rs).
pub fn insert_factor(
    id: pgrx::Uuid,
    user_id: pgrx::Uuid,
    friendly_name: Option<&str>,
    factor_type: FactorType,
    secret: Option<&str>,
    phone: Option<&str>,
    session: Option<pgrx::Uuid>,
) -> pgrx::Uuid {
    if factor_type != FactorType::RecoveryCode {
        crate::hooks::before_enrollment(user_id, factor_type, friendly_name, phone, session);
    }
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
    session: Option<pgrx::Uuid>,
) -> (pgrx::Uuid, String, String, String) {
    check_friendly_name(friendly_name);
    let issuer = non_blank(issuer);
    let account = non_blank(account_name).or(non_blank(friendly_name)).unwrap_or(fallback_account);
    let params = OtpParams::default();
    let secret = secret::generate(secret::DEFAULT_SECRET_BYTES as i64).or_raise();
    // Build the URI before inserting: a bad issuer/account fails with no row written.
    let uri = uri::build_totp(&secret, account, issuer, params.algorithm, params.digits, params.period).or_raise();
    let qr = qr::to_text(&uri, false).or_raise();
    let id = crate::pg::ids::new_factor_id();
    // Stored sealed with the current key of mfa_auth.encryption_keys (plaintext without one).
    let stored = crate::secrets::seal_new(&id, &secret);
    insert_factor(id, user_id, friendly_name, FactorType::Totp, Some(&stored), None, session);
    (id, secret, uri, qr)
}

/// Enrolls a new, unverified phone factor for an E.164 number.
pub fn enroll_phone(user_id: pgrx::Uuid, phone: &str, friendly_name: Option<&str>) -> pgrx::Uuid {
    check_friendly_name(friendly_name);
    if !is_e164(phone) {
        raise(MfaError::invalid("phone", "must be an E.164 number: '+', country code and number, 15 digits at most"));
    }
    insert_factor(crate::pg::ids::new_factor_id(), user_id, friendly_name, FactorType::Phone, None, Some(phone), None)
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
        audit_unenrolled(factor_id, run(client, &UNENROLL, &args));
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
    let factor_type = parse_type(&row.get::<String>(2).or_raise().unwrap_or_default());
    let claims: i64 = row.get(3).or_raise().unwrap_or(0);
    audit::at_commit(audit::factor_event(Event::FactorUnenrolled, user, factor_id, factor_type));
    if claims > 0 {
        audit::at_commit(
            audit::factor_event(Event::ClaimsRemoved, user, factor_id, factor_type)
                .traits(&Traits::new().int("claims", claims)),
        );
    }
}

const UNLOCK: Stmt = Stmt {
    sql:
        "UPDATE auth.mfa_factors SET failed_attempts = 0, locked_until = NULL, updated_at = pg_catalog.clock_timestamp()
           WHERE id = $1 RETURNING user_id, factor_type::text",
    args: &[pg_sys::UUIDOID],
};

/// Lifts a factor's lockout and forgets its failed attempts, in its row and in the
/// shared-memory attempt table.
pub fn unlock(factor_id: pgrx::Uuid) {
    let (user, factor_type) = Spi::connect_mut(|client| {
        let args: [DatumWithOid; 1] = [factor_id.into()];
        let row = run(client, &UNLOCK, &args);
        if row.is_empty() {
            raise(MfaError::FactorNotFound);
        }
        let row = row.first();
        let user: pgrx::Uuid = row.get(1).or_raise().expect("user_id");
        (user, parse_type(&row.get::<String>(2).or_raise().unwrap_or_default()))
    });
    audit::at_commit(audit::factor_event(Event::FactorUnlocked, user, factor_id, factor_type));
    crate::attempt_limits::clear(factor_id.as_bytes());
}

/// The caller's factors of type `$3` (at most 2 rows: enough to tell "one" from "several"),
/// or just `$2` when given and owned by the caller.
const MY_FACTOR: Stmt = Stmt {
    sql: "SELECT id FROM auth.mfa_factors
           WHERE user_id = $1 AND factor_type::text = $3 AND ($2::uuid IS NULL OR id = $2)
           ORDER BY created_at LIMIT 2",
    args: &[pg_sys::UUIDOID, pg_sys::UUIDOID, pg_sys::TEXTOID],
};

/// The current user's factor of type `t` that a self-service call acts on: `factor_id` when
/// given (and theirs), else their only one; `none` when there is none, 21000 when several.
pub fn my_factor(
    client: &mut pgrx::spi::SpiClient<'_>,
    user_id: pgrx::Uuid,
    factor_id: Option<pgrx::Uuid>,
    t: FactorType,
    none: MfaError,
) -> pgrx::Uuid {
    let found = run(client, &MY_FACTOR, &[user_id.into(), factor_id.into(), t.sql_name().into()]);
    match found.len() {
        0 => raise(none),
        1 => found.first().get(1).or_raise().expect("id"),
        _ => raise(MfaError::SeveralFactors),
    }
}

/// Enrolls a TOTP factor for the current user. The otpauth label is ISSUER:ACCOUNT with the
/// current database as default issuer and the role (or user id) as account.
pub fn enroll_my_totp(friendly_name: Option<&str>, issuer: Option<&str>) -> (pgrx::Uuid, String, String, String) {
    let (user_id, session) = crate::session::me("auth.enroll_my_totp");
    Spi::connect_mut(|client| {
        require_entitled(client, user_id, session, None, "enroll another factor");
        require_fresh(client, user_id, session, "enroll another factor");
    });
    let account = if crate::session::in_gateway_mode() { user_id.to_string() } else { crate::session::caller_role() };
    let database =
        Spi::get_one::<String>("SELECT pg_catalog.current_database()::pg_catalog.text").or_raise().unwrap_or_default();
    let issuer = issuer.or(Some(database.as_str()));
    enroll_totp_for(user_id, friendly_name, issuer, Some(&account), &account, session)
}

/// Removes one of the current user's factors (and the claims it granted); a verified one
/// needs an aal2 session.
pub fn unenroll_mine(factor_id: pgrx::Uuid) {
    let (user_id, session) = crate::session::me("auth.unenroll_my_factor");
    unenroll(factor_id, |client, owner, verified| {
        // Another user's factor is answered like one that does not exist.
        if owner != user_id {
            raise(MfaError::FactorNotFound);
        }
        if verified {
            require_entitled(client, user_id, session, None, "remove a verified factor");
        }
        require_fresh(client, user_id, session, "remove a factor");
    });
}

/// Enrolls a new, unverified WebAuthn factor (a relying party must be configured).
pub fn enroll_webauthn(user_id: pgrx::Uuid, friendly_name: Option<&str>, session: Option<pgrx::Uuid>) -> pgrx::Uuid {
    check_friendly_name(friendly_name);
    // A relying party must be configured before anyone can register (the error names the setting).
    crate::relying_party::config();
    insert_factor(crate::pg::ids::new_factor_id(), user_id, friendly_name, FactorType::Webauthn, None, None, session)
}

/// Enrolls a WebAuthn factor for the current user (an aal2 session is needed once the user has
/// a verified factor).
pub fn enroll_my_webauthn(friendly_name: Option<&str>) -> pgrx::Uuid {
    let (user_id, session) = crate::session::me("auth.enroll_my_webauthn");
    Spi::connect_mut(|client| {
        require_entitled(client, user_id, session, None, "enroll another factor");
        require_fresh(client, user_id, session, "enroll another factor");
    });
    enroll_webauthn(user_id, friendly_name, session)
}
