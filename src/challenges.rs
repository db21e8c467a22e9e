//! Challenges: create, verify (by challenge or by factor), clean up.
//!
//! Verification is two statements inside one SQL call: one that locks the factor and
//! the challenge rows and reads everything the decision needs (`FOR UPDATE OF f, c`:
//! concurrent verifications of one factor queue here, and each then sees the rows as
//! the previous one left them), and one that writes the outcome. A wrong code returns
//! false after counting the failure, so the count is committed with the caller's
//! transaction instead of being rolled back by an error.

use pgrx::datum::DatumWithOid;
use pgrx::prelude::*;
use pgrx::spi::SpiClient;

use crate::attempt_limits;
use crate::audit::{self, Entry, EntryExt, Event, Outcome, Traits};
use crate::error::{raise, required, MfaError, OrRaise};
use crate::factor_types::{self, Checked, FactorType, Issued};
use crate::guc;
use crate::ids;
use crate::otp::attempts::Counted;
use crate::spi_util::{run, Stmt};

macro_rules! lock_factor {
    ($credential:literal) => {
        Stmt {
            sql: concat!(
                "SELECT factor_type::text,
                        locked_until > pg_catalog.clock_timestamp(),
                        last_challenged_at > pg_catalog.clock_timestamp() - pg_catalog.make_interval(secs => $2),
                        user_id, status OPERATOR(pg_catalog.=) 'verified', friendly_name, ",
                $credential,
                " FROM auth.mfa_factors WHERE id = $1 FOR UPDATE"
            ),
            args: &[pg_sys::UUIDOID, pg_sys::INT4OID],
        }
    };
}
const LOCK_FACTOR: Stmt = lock_factor!("web_authn_credential::text");
const LOCK_FACTOR_0_1: Stmt = lock_factor!("NULL::text");

/// Whether auth.mfa_factors has 0.2.0's WebAuthn columns. Between installing this library and
/// `ALTER EXTENSION mfa_auth UPDATE`, a database still has 0.1.0's tables, and the statements
/// that name those columns are swapped for ones that do not (`*_0_1`), so TOTP and phone keep
/// working there. Looked up until it is true, then remembered for the backend's life.
pub fn webauthn_columns() -> bool {
    thread_local! { static PRESENT: std::cell::Cell<bool> = const { std::cell::Cell::new(false) }; }
    if PRESENT.with(|p| p.get()) {
        return true;
    }
    let present = Spi::get_one::<bool>(
        "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_attribute
                         WHERE attrelid = 'auth.mfa_factors'::pg_catalog.regclass
                           AND attname = 'web_authn_credential' AND NOT attisdropped)",
    )
    .or_raise()
    .unwrap_or(false);
    PRESENT.with(|p| p.set(present));
    present
}

/// The statement for this database's schema: `current` on 0.2.0's tables, `old` on 0.1.0's.
pub fn for_schema(current: &'static Stmt, old: &'static Stmt) -> &'static Stmt {
    if webauthn_columns() {
        current
    } else {
        old
    }
}

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

/// Everything a verification decides on, with both rows locked. `$2` is the
/// challenge expiry in seconds, `$3` the caller's IP address (or NULL). The columns are
/// read by name into [`Locked`].
macro_rules! verify_lookup {
    ($where:literal) => {
        verify_lookup!("f.web_authn_credential::text", $where)
    };
    ($credential:literal, $where:literal) => {
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
                    c.web_authn_session_data::text AS web_authn_session_data, ",
            $credential,
            " AS web_authn_credential
               FROM auth.mfa_factors f JOIN auth.mfa_challenges c ON c.factor_id = f.id ",
            $where,
            " FOR UPDATE OF f, c"
        )
    };
}

/// The locked factor and challenge of one verification.
pub(crate) struct Locked {
    pub(crate) challenge_id: pgrx::Uuid,
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

impl Locked {
    /// The audit event of a verification of this row.
    fn audit_event(&self) -> Event {
        match (self.factor_type, self.factor_verified) {
            (FactorType::Webauthn, false) => Event::WebauthnRegistration,
            (FactorType::Webauthn, true) => Event::WebauthnAssertion,
            _ => Event::Verification,
        }
    }

    fn read(row: &pgrx::spi::SpiTupleTable<'_>) -> Locked {
        let flag = |name: &str| row.get_by_name::<bool, _>(name).or_raise().unwrap_or(false);
        Locked {
            challenge_id: row.get_by_name("challenge_id").or_raise().expect("c.id"),
            factor_id: row.get_by_name("factor_id").or_raise().expect("f.id"),
            user_id: row.get_by_name("user_id").or_raise().expect("f.user_id"),
            factor_type: FactorType::parse(&row.get_by_name::<String, _>("factor_type").or_raise().unwrap_or_default()),
            factor_verified: flag("factor_verified"),
            secret: row.get_by_name("secret").or_raise(),
            totp_algorithm: row.get_by_name("totp_algorithm").or_raise().unwrap_or_default(),
            totp_digits: row.get_by_name("totp_digits").or_raise().unwrap_or(6),
            totp_period: row.get_by_name("totp_period").or_raise().unwrap_or(30),
            last_totp_step: row.get_by_name("last_totp_step").or_raise(),
            locked: flag("locked"),
            challenge_verified: flag("challenge_verified"),
            expired: flag("expired"),
            ip_mismatch: flag("ip_mismatch"),
            otp_code: row.get_by_name("otp_code").or_raise(),
            failed_attempts: row.get_by_name("failed_attempts").or_raise().unwrap_or(0),
            lock_ran_out: flag("lock_ran_out"),
            web_authn_credential: row.get_by_name("web_authn_credential").or_raise(),
            web_authn_session_data: row.get_by_name("web_authn_session_data").or_raise(),
        }
    }
}

/// By challenge id (primary key).
pub const LOOKUP_CHALLENGE: Stmt =
    Stmt { sql: verify_lookup!("WHERE c.id = $1"), args: &[pg_sys::UUIDOID, pg_sys::INT4OID, pg_sys::INETOID] };
const LOOKUP_CHALLENGE_0_1: Stmt = Stmt {
    sql: verify_lookup!("NULL::text", "WHERE c.id = $1"),
    args: &[pg_sys::UUIDOID, pg_sys::INT4OID, pg_sys::INETOID],
};

/// Which challenge a verification is of.
#[derive(Clone, Copy)]
pub enum Lookup {
    /// By challenge id ([`LOOKUP_CHALLENGE`]).
    Challenge,
    /// The factor's newest open challenge ([`LOOKUP_FACTOR`]).
    Factor,
}

impl Lookup {
    fn stmt(self) -> &'static Stmt {
        match self {
            Lookup::Challenge => for_schema(&LOOKUP_CHALLENGE, &LOOKUP_CHALLENGE_0_1),
            Lookup::Factor => for_schema(&LOOKUP_FACTOR, &LOOKUP_FACTOR_0_1),
        }
    }
}

/// By factor id: its newest open (unverified, unexpired) challenge, found
/// newest-first on (factor_id, created_at DESC).
pub const LOOKUP_FACTOR: Stmt = Stmt {
    sql: verify_lookup!(
        "WHERE c.id = (SELECT o.id FROM auth.mfa_challenges o
                        WHERE o.factor_id = $1 AND o.verified_at IS NULL
                          AND o.created_at > pg_catalog.clock_timestamp() - pg_catalog.make_interval(secs => $2)
                        ORDER BY o.created_at DESC LIMIT 1)"
    ),
    args: &[pg_sys::UUIDOID, pg_sys::INT4OID, pg_sys::INETOID],
};
const LOOKUP_FACTOR_0_1: Stmt = Stmt {
    sql: verify_lookup!(
        "NULL::text",
        "WHERE c.id = (SELECT o.id FROM auth.mfa_challenges o
                        WHERE o.factor_id = $1 AND o.verified_at IS NULL
                          AND o.created_at > pg_catalog.clock_timestamp() - pg_catalog.make_interval(secs => $2)
                        ORDER BY o.created_at DESC LIMIT 1)"
    ),
    args: &[pg_sys::UUIDOID, pg_sys::INT4OID, pg_sys::INETOID],
};

/// Success: the challenge is verified, the factor verified (with the accepted TOTP
/// step and a clean failure count), and when a session is given its AMR claim is
/// recorded (upsert) together with the factor behind it. A phone factor's other open
/// challenges are closed (deleted): their codes were sent, and must not stay usable.
/// The factor-claim link is inserted only when missing, without ON CONFLICT: its key holds
/// the factor, whose row this transaction has locked, so no other verification can be
/// adding the same link meanwhile (and a speculative insertion costs a WAL record more).
/// One statement per factor type, each with only its own parts: a part that ran only for
/// some calls (`… AND $5 = 'mfa/phone'`) made custom plans cheaper than the generic one, so
/// Postgres re-planned the statement at every call (about 0.2 ms per WebAuthn or phone
/// success); with none, the plan cached for the backend is reused (bench/run checks it).
macro_rules! succeed {
    ($closed:literal, $webauthn_columns:literal) => {
        Stmt {
            sql: concat!(
                "WITH c AS (
              UPDATE auth.mfa_challenges SET verified_at = pg_catalog.clock_timestamp()
               WHERE id = $1 RETURNING verified_at
          )",
                $closed,
                ", f AS (
              UPDATE auth.mfa_factors
                 SET status = 'verified', last_totp_step = COALESCE($3, last_totp_step),
                     failed_attempts = 0, locked_until = NULL, updated_at = (SELECT verified_at FROM c),
                     secret = COALESCE($7, secret)",
                $webauthn_columns,
                " WHERE id = $2
          ), claim AS (
              INSERT INTO auth.mfa_amr_claims AS a (id, session_id, authentication_method, created_at, updated_at)
              SELECT $6, $4, $5, verified_at, verified_at FROM c WHERE $4 IS NOT NULL
              ON CONFLICT ON CONSTRAINT mfa_amr_claims_session_id_authentication_method_pkey
              DO UPDATE SET updated_at = excluded.updated_at
              RETURNING a.session_id
          )
          INSERT INTO auth.mfa_amr_claim_factors (session_id, authentication_method, factor_id)
          SELECT claim.session_id, $5, $2 FROM claim
           WHERE NOT EXISTS (SELECT FROM auth.mfa_amr_claim_factors l
                              WHERE l.factor_id = $2 AND l.session_id = claim.session_id
                                AND l.authentication_method = $5)"
            ),
            args: &[
                pg_sys::UUIDOID,
                pg_sys::UUIDOID,
                pg_sys::INT8OID,
                pg_sys::UUIDOID,
                pg_sys::TEXTOID,
                pg_sys::UUIDOID,
                pg_sys::TEXTOID,
                pg_sys::TEXTOID,
            ],
        }
    };
}
/// WebAuthn: the credential with its new sign count (`$8`). Only on the current tables (0.1.0
/// has no WebAuthn factors).
const SUCCEED_WEBAUTHN: Stmt = succeed!(
    "",
    ", web_authn_credential = COALESCE($8::jsonb, web_authn_credential),
       web_authn_aaguid = COALESCE(($8::jsonb ->> 'aaguid')::uuid, web_authn_aaguid)"
);
/// Phone, on either schema: the factor's other open challenges are closed; `$8` unused.
const SUCCEED_PHONE: Stmt = succeed!(
    ", closed AS (
              DELETE FROM auth.mfa_challenges
               WHERE factor_id = $2 AND id <> $1 AND verified_at IS NULL
          )",
    ""
);
/// TOTP, on either schema: `$8` unused.
const SUCCEED_TOTP: Stmt = succeed!("", "");

/// Failure: the count decided by attempt_limits (`$2`), the lock when it reached the
/// limit (`$3`, for `$4` seconds), and the secret re-sealed with the current key (`$5`).
macro_rules! fail {
    ($used_up:literal) => {
        Stmt {
            sql: concat!(
                $used_up,
                "UPDATE auth.mfa_factors
             SET failed_attempts = $2,
                 locked_until = CASE WHEN $3 THEN pg_catalog.clock_timestamp() + pg_catalog.make_interval(secs => $4) END,
                 secret = COALESCE($5, secret),
                 updated_at = pg_catalog.clock_timestamp()
           WHERE id = $1"
            ),
            args: &[pg_sys::UUIDOID, pg_sys::INT4OID, pg_sys::BOOLOID, pg_sys::INT4OID, pg_sys::TEXTOID, pg_sys::UUIDOID],
        }
    };
}
/// TOTP and phone (`$6` unused).
const FAIL: Stmt = fail!("");
/// WebAuthn: the challenge (`$6`) is used up as well: its session data goes, so it cannot be
/// answered again (a new one must be created). A statement of its own, as for success: a
/// part switched off by a parameter (`WHERE id = $6 AND $7`) re-planned every failure.
const FAIL_WEBAUTHN: Stmt = fail!(
    "WITH used_up AS (
              UPDATE auth.mfa_challenges SET web_authn_session_data = NULL WHERE id = $6
          )
          "
);

/// One batch of challenges created before the cutoff `$1`, oldest first on
/// mfa_challenge_created_at_idx, skipping rows a verification holds. The cutoff is a
/// parameter computed once per call, so it is an Index Cond that ends the scan at the first
/// young row (a volatile `clock_timestamp() - $1` here would be a Filter over every young row).
pub const CLEANUP_BATCH: Stmt = Stmt {
    sql: "DELETE FROM auth.mfa_challenges
           WHERE id = ANY (ARRAY(
                 SELECT id FROM auth.mfa_challenges
                  WHERE created_at < $1
                  ORDER BY created_at
                  LIMIT $2
                    FOR UPDATE SKIP LOCKED))",
    args: &[pg_sys::TIMESTAMPTZOID, pg_sys::INT4OID],
};

const CUTOFF: Stmt = Stmt { sql: "SELECT pg_catalog.clock_timestamp() - $1", args: &[pg_sys::INTERVALOID] };

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
            &[factor_id.into(), ip_address.clone().into(), ids::uuid_v7().into(), guc::CHALLENGE_EXPIRY.get().into()],
        );
        if !c.is_empty() {
            let c = c.first();
            let id: pgrx::Uuid = c.get(1).or_raise().expect("RETURNING id");
            let expires: TimestampWithTimeZone = c.get(2).or_raise().expect("RETURNING expires_at");
            created(c.get(3).or_raise().expect("RETURNING user_id"), FactorType::Totp, id);
            return Created { id, expires, code: None, webauthn: None };
        }
    }
    let f = run(
        client,
        for_schema(&LOCK_FACTOR, &LOCK_FACTOR_0_1),
        &[factor_id.into(), guc::PHONE_RESEND_INTERVAL.get().into()],
    );
    if f.is_empty() {
        raise(MfaError::FactorNotFound);
    }
    let f = f.first();
    let factor_type = FactorType::parse(&f.get::<String>(1).or_raise().unwrap_or_default());
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
    let row = factor_types::webauthn::FactorRow {
        factor_id,
        user_id: f.get(4).or_raise().expect("user_id"),
        verified: f.get::<bool>(5).or_raise().unwrap_or(false),
        friendly_name: f.get(6).or_raise(),
        credential: f.get(7).or_raise(),
    };
    let Issued { code, stored, session_data, webauthn } =
        factor_types::issue(client, factor_type, &row, resend_too_soon);
    let c = run(
        client,
        &INSERT_CHALLENGE,
        &[
            factor_id.into(),
            ip_address.into(),
            stored.into(),
            guc::CHALLENGE_EXPIRY.get().into(),
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

/// Creates a challenge for a factor. For a phone factor it also makes the SMS
/// code, stores only its salted hash and returns the code (once). For a WebAuthn factor it
/// returns the options for `navigator.credentials.create()` (an unverified factor) or
/// `get()` (a verified one) in `webauthn`. Since 0.2.0 (the `webauthn` column); its C
/// symbol is new, so that 0.1.0's definition keeps its own (below).
#[pg_extern(volatile, security_definer, name = "create_challenge")]
#[search_path(pg_catalog, pg_temp)]
fn create_challenge_v2(
    factor_id: Option<pgrx::Uuid>,
    ip_address: Option<pgrx::Inet>,
) -> TableIterator<
    'static,
    (
        name!(challenge_id, pgrx::Uuid),
        name!(expires_at, TimestampWithTimeZone),
        name!(code, Option<String>),
        name!(webauthn, Option<pgrx::JsonB>),
    ),
> {
    crate::error::require_writable("auth.create_challenge()");
    let factor_id = required(factor_id, "factor_id");
    let ip_address = required(ip_address, "ip_address");
    let c = Spi::connect_mut(|client| create(client, factor_id, Some(ip_address)));
    let webauthn = c.webauthn.map(pgrx::JsonB);
    TableIterator::once((c.id, c.expires, c.code, webauthn))
}

/// 0.1.0's auth.create_challenge (three columns), still exported under its C symbol
/// `create_challenge_wrapper` for a database on 0.1.0's SQL until `ALTER EXTENSION mfa_auth
/// UPDATE`. Not in 0.2.0's SQL.
#[pg_extern(sql = false)]
fn create_challenge(
    factor_id: Option<pgrx::Uuid>,
    ip_address: Option<pgrx::Inet>,
) -> TableIterator<
    'static,
    (name!(challenge_id, pgrx::Uuid), name!(expires_at, TimestampWithTimeZone), name!(code, Option<String>)),
> {
    crate::error::require_writable("auth.create_challenge()");
    let factor_id = required(factor_id, "factor_id");
    let ip_address = required(ip_address, "ip_address");
    let c = Spi::connect_mut(|client| create(client, factor_id, Some(ip_address)));
    TableIterator::once((c.id, c.expires, c.code))
}

/// Which verification function was called: one taking a code, or verify_webauthn.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Via {
    Code,
    Webauthn,
}

/// Shared by every verification function: `lookup` finds and locks the
/// rows, `missing` is raised when it finds none. Load, refuse, count, decide, record.
#[allow(clippy::too_many_arguments)]
pub fn verify(
    client: &mut SpiClient<'_>,
    lookup: Lookup,
    missing: MfaError,
    key: pgrx::Uuid,
    code: &str,
    ip_address: Option<pgrx::Inet>,
    session_id: Option<pgrx::Uuid>,
    via: Via,
    owner: Option<pgrx::Uuid>,
) -> bool {
    let row = load(client, lookup, missing, key, ip_address.clone());
    // Self-service: another user's challenge is answered like one that does not exist.
    if owner.is_some_and(|o| o != row.user_id) {
        raise(MfaError::ChallengeNotFound);
    }
    let audit_with = |outcome: Outcome, traits: Traits| {
        audit::factor_event(row.audit_event(), row.user_id, row.factor_id, row.factor_type)
            .outcome(outcome)
            .session_id(session_id)
            .inet(&ip_address)
            .traits(&traits.label("challenge_id", &row.challenge_id.to_string()))
    };
    let audit = |outcome: Outcome| audit_with(outcome, Traits::new());
    refuse(client, &row, session_id, via, &audit);
    // The response's structure is checked before anything is counted: malformed input is
    // an error (22023), not an attempt.
    let response = factor_types::parse(&row, code);
    // Counted before the code is evaluated and cleared on success: from here on neither a
    // ROLLBACK nor an error can take this attempt back (and with no room in the shared
    // table the attempt is refused, 53400, before any code is evaluated). The row's count
    // restarts after a lock that has run out (a live lock was refused above).
    let counted = attempt_limits::count_attempt(row.factor_id.as_bytes(), row.failed_attempts, row.lock_ran_out);
    let checked = factor_types::check(&row, &response);
    if checked.ok {
        record_success(client, &row, &checked, session_id);
        audit::at_commit(audit(Outcome::Success));
        if !row.factor_verified {
            audit::at_commit(audit::factor_event(Event::FactorVerified, row.user_id, row.factor_id, row.factor_type));
        }
    } else {
        let outcome = if checked.replay { Outcome::Replay } else { Outcome::Failure };
        let failures = i64::from(counted.failures);
        audit::now(audit_with(outcome, Traits::new().int("failed_attempts", failures)));
        if counted.locked_until.is_some() {
            audit::now(
                audit::factor_event(Event::FactorLocked, row.user_id, row.factor_id, row.factor_type).traits(
                    &Traits::new()
                        .int("failed_attempts", failures)
                        .int("lockout_seconds", i64::from(guc::LOCKOUT_DURATION.get())),
                ),
            );
        }
        record_failure(client, &row, counted, checked.resealed);
    }
    checked.ok
}

/// Finds and locks the factor and challenge rows.
fn load(
    client: &mut SpiClient<'_>,
    lookup: Lookup,
    missing: MfaError,
    key: pgrx::Uuid,
    ip_address: Option<pgrx::Inet>,
) -> Locked {
    let found = run(client, lookup.stmt(), &[key.into(), guc::CHALLENGE_EXPIRY.get().into(), ip_address.into()]);
    if found.is_empty() {
        raise(missing);
    }
    Locked::read(&found.first())
}

/// Raises when the attempt may not be evaluated at all. Order matters: a locked factor
/// refuses everything (its row's lock, or the shared-memory one a rolled-back failure left);
/// then the challenge's own state; then the entitlement rule.
fn refuse(
    client: &mut SpiClient<'_>,
    row: &Locked,
    session_id: Option<pgrx::Uuid>,
    via: Via,
    audit: &dyn Fn(Outcome) -> Entry,
) {
    if (row.factor_type == FactorType::Webauthn) != (via == Via::Webauthn) {
        raise(MfaError::WrongVerifier(row.factor_type.sql_name()));
    }
    // Each refusal is recorded whatever the caller does with the error.
    let refused = |outcome: Outcome, e: MfaError| -> ! {
        audit::now(audit(outcome));
        raise(e)
    };
    if row.locked || attempt_limits::locked(row.factor_id.as_bytes()) {
        refused(Outcome::Locked, MfaError::FactorLocked);
    }
    if row.challenge_verified {
        refused(Outcome::Replay, MfaError::ChallengeAlreadyVerified);
    }
    if row.expired {
        refused(Outcome::Expired, MfaError::ChallengeExpired);
    }
    if row.ip_mismatch {
        refused(Outcome::IpMismatch, MfaError::IpMismatch);
    }
    // An unverified factor of a user who has another verified one: only an aal2 session of
    // that user may verify it (otherwise a password-only session could add its own factor
    // and raise itself to aal2). No code is evaluated and nothing is counted.
    if !row.factor_verified {
        crate::factors::require_entitled(client, row.user_id, session_id, Some(row.factor_id), "verify another factor");
    }
}

fn record_success(client: &mut SpiClient<'_>, row: &Locked, checked: &Checked, session_id: Option<pgrx::Uuid>) {
    let args: [DatumWithOid; 8] = [
        row.challenge_id.into(),
        row.factor_id.into(),
        checked.step.into(),
        session_id.into(),
        row.factor_type.amr_method().into(),
        ids::uuid_v7().into(),
        checked.resealed.clone().into(),
        checked.credential.clone().into(),
    ];
    let stmt = match row.factor_type {
        FactorType::Totp => &SUCCEED_TOTP,
        FactorType::Phone => &SUCCEED_PHONE,
        // (recovery codes have no challenges: create_challenge refuses them)
        FactorType::Webauthn | FactorType::RecoveryCode => &SUCCEED_WEBAUTHN,
    };
    run(client, stmt, &args);
    attempt_limits::clear(row.factor_id.as_bytes());
    crate::session::claims_changed();
}

fn record_failure(client: &mut SpiClient<'_>, row: &Locked, counted: Counted, resealed: Option<String>) {
    let args: [DatumWithOid; 6] = [
        row.factor_id.into(),
        i32::try_from(counted.failures).unwrap_or(i32::MAX).into(),
        counted.locked_until.is_some().into(),
        guc::LOCKOUT_DURATION.get().into(),
        resealed.into(),
        row.challenge_id.into(),
    ];
    run(client, if row.factor_type == FactorType::Webauthn { &FAIL_WEBAUTHN } else { &FAIL }, &args);
}

/// Verifies `code` against a challenge. True: verified (and the session's AMR claim
/// recorded when `session_id` is given). False: wrong code, counted.
#[pg_extern(volatile, security_definer)]
#[search_path(pg_catalog, pg_temp)]
fn verify_challenge(
    challenge_id: Option<pgrx::Uuid>,
    code: Option<&str>,
    ip_address: default!(Option<pgrx::Inet>, "NULL"),
    session_id: default!(Option<pgrx::Uuid>, "NULL"),
) -> bool {
    crate::error::require_writable("auth.verify_challenge()");
    let challenge_id = required(challenge_id, "challenge_id");
    let code = required(code, "code");
    Spi::connect_mut(|client| {
        verify(
            client,
            Lookup::Challenge,
            MfaError::ChallengeNotFound,
            challenge_id,
            code,
            ip_address,
            session_id,
            Via::Code,
            None,
        )
    })
}

/// Verifies `code` against the factor's newest open challenge.
#[pg_extern(volatile, security_definer)]
#[search_path(pg_catalog, pg_temp)]
fn verify_factor(
    factor_id: Option<pgrx::Uuid>,
    code: Option<&str>,
    ip_address: default!(Option<pgrx::Inet>, "NULL"),
    session_id: default!(Option<pgrx::Uuid>, "NULL"),
) -> bool {
    crate::error::require_writable("auth.verify_factor()");
    let factor_id = required(factor_id, "factor_id");
    let code = required(code, "code");
    Spi::connect_mut(|client| {
        verify(
            client,
            Lookup::Factor,
            MfaError::NoOpenChallenge,
            factor_id,
            code,
            ip_address,
            session_id,
            Via::Code,
            None,
        )
    })
}

fn check_batch_size(batch_size: Option<i32>) -> i32 {
    let batch_size = required(batch_size, "batch_size");
    if batch_size < 1 {
        raise(MfaError::invalid("batch_size", format!("must be at least 1, got {batch_size}")));
    }
    batch_size
}

/// One batch of [`CLEANUP_BATCH`]: how many challenges it deleted.
fn cleanup_batch(client: &mut SpiClient<'_>, cutoff: TimestampWithTimeZone, batch_size: i32) -> i64 {
    let args: [DatumWithOid; 2] = [cutoff.into(), batch_size.into()];
    run(client, &CLEANUP_BATCH, &args).len() as i64
}

/// The audit event of a challenge cleanup that deleted `n` rows (none when it deleted none).
fn audit_cleanup(n: i64) {
    if n > 0 {
        audit::at_commit(audit::event(Event::Cleanup).traits(&Traits::new().int("challenges", n)));
    }
}

/// Deletes challenges created more than `older_than` ago, `batch_size` rows per
/// statement, skipping rows a concurrent verification holds. Returns how many. All
/// batches run in the caller's transaction: for a large backlog see
/// auth.cleanup_challenges_batched (sql/maintenance.sql), which commits after each.
#[pg_extern(volatile, security_definer)]
#[search_path(pg_catalog, pg_temp)]
fn cleanup_challenges(
    older_than: default!(Option<Interval>, "'24 hours'"),
    batch_size: default!(Option<i32>, 1000),
) -> i64 {
    crate::error::require_writable("auth.cleanup_challenges()");
    let older_than = required(older_than, "older_than");
    let batch_size = check_batch_size(batch_size);
    if older_than.as_micros() < 0 {
        raise(MfaError::invalid("older_than", "must not be negative"));
    }
    Spi::connect_mut(|client| {
        let args: [DatumWithOid; 1] = [older_than.into()];
        let cutoff: TimestampWithTimeZone = run(client, &CUTOFF, &args).first().get(1).or_raise().expect("a timestamp");
        let mut total = 0i64;
        loop {
            let n = cleanup_batch(client, cutoff, batch_size);
            total += n;
            if n < i64::from(batch_size) {
                audit_cleanup(total);
                break total;
            }
        }
    })
}

/// Deletes one batch (at most `batch_size`) of challenges created before `cutoff`; returns
/// how many. The step of auth.cleanup_challenges_batched, which commits between calls.
#[pg_extern(volatile, security_definer)]
#[search_path(pg_catalog, pg_temp)]
fn cleanup_challenges_batch(cutoff: Option<TimestampWithTimeZone>, batch_size: default!(Option<i32>, 1000)) -> i64 {
    crate::error::require_writable("auth.cleanup_challenges_batched()");
    let cutoff = required(cutoff, "cutoff");
    let batch_size = check_batch_size(batch_size);
    let n = Spi::connect_mut(|client| cleanup_batch(client, cutoff, batch_size));
    audit_cleanup(n);
    n
}

#[cfg(any(test, feature = "pg_test"))]
#[pg_schema]
mod tests {
    use pgrx::prelude::*;

    /// 20 000 challenges over 5 000 factors plus 2 000 of one factor, analyzed, so the planner
    /// sees tables too big to scan whole (with a few hundred factors a hash join over a 2-page
    /// seq scan wins) and a factor whose history is worth reading newest-first.
    fn load() {
        Spi::run(
            "INSERT INTO auth.mfa_factors (id, user_id, factor_type, secret)
               SELECT ('00000000-0000-0000-0000-' || lpad(to_hex(f), 12, '0'))::uuid, gen_random_uuid(), 'totp', 'JBSWY3DPEHPK3PXP'
                 FROM generate_series(1, 5000) f;
             INSERT INTO auth.mfa_challenges (factor_id, created_at, ip_address)
               SELECT ('00000000-0000-0000-0000-' || lpad(to_hex(1 + i % 5000), 12, '0'))::uuid,
                      now() - make_interval(secs => i * 10), '10.0.0.1'
                 FROM generate_series(1, 20000) i;
             -- One factor with a long history: its newest challenge must be found newest-first.
             INSERT INTO auth.mfa_challenges (factor_id, created_at, ip_address)
               SELECT '00000000-0000-0000-0000-000000000007', now() - make_interval(secs => i), '10.0.0.1'
                 FROM generate_series(1, 2000) i;
             ANALYZE auth.mfa_factors; ANALYZE auth.mfa_challenges;",
        )
        .unwrap();
    }

    fn plan(stmt: &crate::spi_util::Stmt, args: &str) -> String {
        // The statement exactly as the extension prepares it (same parameter types), bound.
        let types: Vec<String> = stmt.args.iter().map(|o| format!("{}::oid::regtype", o.to_u32())).collect();
        let types = Spi::get_one::<String>(&format!("SELECT concat_ws(', ', {})", types.join(", "))).unwrap().unwrap();
        Spi::run(&format!("PREPARE p({types}) AS {}", stmt.sql)).unwrap();
        let text = Spi::connect(|c| {
            c.select(&format!("EXPLAIN (COSTS OFF) EXECUTE p({args})"), None, &[])
                .unwrap()
                .map(|r| r.get::<String>(1).unwrap().unwrap_or_default())
                .collect::<Vec<_>>()
                .join("\n")
        });
        Spi::run("DEALLOCATE p").unwrap();
        text
    }

    #[pg_test]
    fn verify_factor_finds_the_newest_challenge_by_index() {
        load();
        let p = plan(&super::LOOKUP_FACTOR, "'00000000-0000-0000-0000-000000000007', 300, NULL");
        assert!(p.contains("Index Scan using mfa_challenges_factor_id_created_at_idx"), "{p}");
        assert!(p.contains("Index Scan using mfa_challenges_pkey"), "{p}");
        assert!(p.contains("Index Scan using mfa_factors_pkey"), "{p}");
        assert!(!p.contains("Seq Scan"), "{p}");
    }

    #[pg_test]
    fn verify_challenge_is_primary_key_lookups() {
        load();
        let p = plan(&super::LOOKUP_CHALLENGE, "'00000000-0000-0000-0000-000000000001', 300, '10.0.0.1'");
        assert!(p.contains("Index Scan using mfa_challenges_pkey"), "{p}");
        assert!(!p.contains("Seq Scan"), "{p}");
    }

    #[pg_test]
    fn cleanup_walks_the_created_at_index() {
        load();
        let p = plan(&super::CLEANUP_BATCH, "now() - interval '24 hours', 1000");
        assert!(p.contains("Index Scan Backward using mfa_challenge_created_at_idx"), "{p}");
        // The cutoff bounds the scan (Index Cond), not a Filter over every young row.
        // (EXPLAIN EXECUTE shows the custom plan: the bound cutoff as a constant.)
        assert!(p.contains("Index Cond: (created_at < '"), "{p}");
        assert!(!p.contains("Filter"), "{p}");
        assert!(p.contains("LockRows"), "{p}");
        assert!(!p.contains("Seq Scan"), "{p}");
    }
}
