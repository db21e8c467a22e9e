//! Creating a challenge: for a TOTP factor one statement (nothing to issue); for the others
//! the factor is locked, its kind issues the challenge (src/factor_kinds/) and the challenge
//! row is inserted.

use pgrx::prelude::*;
use pgrx::spi::SpiClient;

use crate::attempt_limits;
use crate::audit::{self, EntryExt, Event, Outcome, Traits};
use crate::factor_kinds::{self, parse_type, FactorRow, FactorType, Issued};
use crate::pg::error::{raise, MfaError, OrRaise};
use crate::pg::ids;
use crate::pg::spi::{run, Stmt};
use crate::settings;

/// The factor, locked: its type, lock, resend window, owner, status, name and credential.
const LOCK_FACTOR: Stmt = Stmt {
    sql: "SELECT factor_type::text,
                 locked_until > pg_catalog.clock_timestamp(),
                 last_challenged_at > pg_catalog.clock_timestamp() - pg_catalog.make_interval(secs => $2),
                 user_id, status OPERATOR(pg_catalog.=) 'verified', friendly_name, web_authn_credential::text
            FROM auth.mfa_factors WHERE id = $1 FOR UPDATE",
    args: &[pg_sys::UUIDOID, pg_sys::INT4OID],
};

/// `$5` is the new challenge's id: a UUIDv7 (time-ordered), so inserts into the primary
/// key append to its right edge instead of landing on a random leaf of a large index.
/// `$6` is the WebAuthn session data, completed with its `expires`.
const INSERT_CHALLENGE: Stmt = Stmt {
    sql: "WITH now AS (SELECT pg_catalog.clock_timestamp() AS t), c AS (
              INSERT INTO auth.mfa_challenges (id, factor_id, created_at, ip_address, otp_code, web_authn_session_data)
              SELECT $5, $1, now.t, COALESCE($2, pg_catalog.inet_client_addr(), '::1'::inet), $3,
                     $6::jsonb OPERATOR(pg_catalog.||)
                       pg_catalog.jsonb_build_object('expires', now.t + pg_catalog.make_interval(secs => $4))
                FROM now
              RETURNING id, created_at
          ), f AS (
              UPDATE auth.mfa_factors SET last_challenged_at = (SELECT created_at FROM c) WHERE id = $1
          )
          SELECT id, created_at + pg_catalog.make_interval(secs => $4) FROM c",
    args: &[pg_sys::UUIDOID, pg_sys::INETOID, pg_sys::TEXTOID, pg_sys::INT4OID, pg_sys::UUIDOID, pg_sys::TEXTOID],
};

/// A TOTP challenge in one statement: a TOTP factor has nothing to issue, so the factor's row
/// is locked by the update of its `last_challenged_at` (no separate `FOR UPDATE` read) and the
/// challenge inserted from it. No row when the factor is missing, not TOTP or locked: the
/// general path then decides, and raises, under its own lock. Only 0.1.0's columns.
const CREATE_TOTP_CHALLENGE: Stmt = Stmt {
    sql: "WITH f AS (
              UPDATE auth.mfa_factors SET last_challenged_at = pg_catalog.clock_timestamp()
               WHERE id = $1 AND factor_type OPERATOR(pg_catalog.=) 'totp'
                 AND (locked_until IS NULL OR locked_until <= pg_catalog.clock_timestamp())
              RETURNING id, last_challenged_at, user_id
          ), c AS (
              INSERT INTO auth.mfa_challenges (id, factor_id, created_at, ip_address)
              SELECT $3, f.id, f.last_challenged_at, COALESCE($2, pg_catalog.inet_client_addr(), '::1'::inet) FROM f
              RETURNING id, created_at
          )
          SELECT c.id, c.created_at + pg_catalog.make_interval(secs => $4), f.user_id FROM c, f",
    args: &[pg_sys::UUIDOID, pg_sys::INETOID, pg_sys::UUIDOID, pg_sys::INT4OID],
};

/// A new challenge: its id, when it expires, the code to send (phone factors) and the
/// WebAuthn options (WebAuthn factors).
pub struct Created {
    pub id: pgrx::Uuid,
    pub expires: TimestampWithTimeZone,
    pub code: Option<String>,
    pub webauthn: Option<serde_json::Value>,
}

/// Creates a challenge (see create_challenge). `ip_address` NULL: the client's address,
/// or ::1 for a Unix-socket connection.
pub fn create(client: &mut SpiClient<'_>, factor_id: pgrx::Uuid, ip_address: Option<pgrx::Inet>) -> Created {
    let audit_ip = ip_address.clone();
    let created = |user: pgrx::Uuid, t: FactorType, id: pgrx::Uuid| {
        audit::at_commit(
            audit::factor_event(Event::ChallengeCreated, user, factor_id, t)
                .inet(&audit_ip)
                .traits(&Traits::new().label("challenge_id", &id.to_string())),
        )
    };
    if !attempt_limits::locked(factor_id.as_bytes()) {
        let c = run(
            client,
            &CREATE_TOTP_CHALLENGE,
            &[factor_id.into(), ip_address.clone().into(), ids::uuid_v7().into(), settings::challenge_expiry().into()],
        );
        if !c.is_empty() {
            let c = c.first();
            let id: pgrx::Uuid = c.get(1).or_raise().expect("RETURNING id");
            let expires: TimestampWithTimeZone = c.get(2).or_raise().expect("RETURNING expires_at");
            created(c.get(3).or_raise().expect("RETURNING user_id"), FactorType::Totp, id);
            return Created { id, expires, code: None, webauthn: None };
        }
    }
    let f = run(client, &LOCK_FACTOR, &[factor_id.into(), settings::phone_resend_interval().into()]);
    if f.is_empty() {
        raise(MfaError::FactorNotFound);
    }
    let f = f.first();
    let factor_type = parse_type(&f.get::<String>(1).or_raise().unwrap_or_default());
    if f.get::<bool>(2).or_raise().unwrap_or(false) || attempt_limits::locked(factor_id.as_bytes()) {
        let user: Option<pgrx::Uuid> = f.get(4).or_raise();
        audit::now(
            audit::event(Event::ChallengeCreated)
                .outcome(Outcome::Locked)
                .user(user.map(audit::bytes))
                .factor(Some(audit::bytes(factor_id)))
                .factor_type(factor_type.sql_name())
                .inet(&ip_address),
        );
        raise(MfaError::FactorLocked);
    }
    let resend_too_soon = f.get::<bool>(3).or_raise().unwrap_or(false);
    let row = FactorRow {
        factor_id,
        user_id: f.get(4).or_raise().expect("user_id"),
        verified: f.get::<bool>(5).or_raise().unwrap_or(false),
        friendly_name: f.get(6).or_raise(),
        credential: f.get(7).or_raise(),
    };
    let Issued { code, stored, session_data, webauthn } =
        factor_kinds::of(factor_type).issue(client, &row, resend_too_soon);
    let c = run(
        client,
        &INSERT_CHALLENGE,
        &[
            factor_id.into(),
            ip_address.into(),
            stored.into(),
            settings::challenge_expiry().into(),
            ids::uuid_v7().into(),
            session_data.into(),
        ],
    );
    let c = c.first();
    let id: pgrx::Uuid = c.get(1).or_raise().expect("RETURNING id");
    let expires: TimestampWithTimeZone = c.get(2).or_raise().expect("RETURNING expires_at");
    created(row.user_id, factor_type, id);
    Created { id, expires, code, webauthn }
}
