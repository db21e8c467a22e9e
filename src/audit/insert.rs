//! Writing events into auth.mfa_audit_log, and removing old rows.

use pgrx::prelude::*;

use super::*;

/// One INSERT for a batch, parameters as arrays (one element per event).
pub(super) const INSERT_SQL: &str = "INSERT INTO auth.mfa_audit_log
       (id, created_at, event, outcome, user_id, factor_id, session_id, ip_address, payload)
     SELECT e.id, 'epoch'::pg_catalog.timestamptz OPERATOR(pg_catalog.+) pg_catalog.make_interval(secs => e.us OPERATOR(pg_catalog./) 1e6),
            e.event, e.outcome, e.user_id, e.factor_id, e.session_id, e.ip, e.payload
       FROM ROWS FROM (pg_catalog.unnest($1::pg_catalog.uuid[]), pg_catalog.unnest($2::pg_catalog.int8[]),
                       pg_catalog.unnest($3::pg_catalog.text[]), pg_catalog.unnest($4::pg_catalog.text[]),
                       pg_catalog.unnest($5::pg_catalog.uuid[]), pg_catalog.unnest($6::pg_catalog.uuid[]),
                       pg_catalog.unnest($7::pg_catalog.uuid[]), pg_catalog.unnest($8::pg_catalog.inet[]),
                       pg_catalog.unnest($9::pg_catalog.jsonb[]))
            AS e(id, us, event, outcome, user_id, factor_id, session_id, ip, payload)
     ON CONFLICT (id) DO NOTHING";

pub(super) fn uuid(b: Option<[u8; 16]>) -> Option<pgrx::Uuid> {
    b.map(pgrx::Uuid::from_bytes)
}

/// Signs users out: removes every claim (of every method) of each session in which one of the
/// users `$1` has an MFA claim, and of the sessions `$2`, with their claim links; the count of
/// claims removed. Every name qualified: the audit writer runs it (and auth.sign_out_user, src/amr.rs).
pub const SIGN_OUT_SQL: &str = "WITH s AS (
         SELECT l.session_id FROM auth.mfa_amr_claim_factors l
           JOIN auth.mfa_factors f ON f.id OPERATOR(pg_catalog.=) l.factor_id
          WHERE f.user_id OPERATOR(pg_catalog.=) ANY ($1::pg_catalog.uuid[])
         UNION
         SELECT x FROM pg_catalog.unnest($2::pg_catalog.uuid[]) x WHERE x IS NOT NULL
     ), links AS (
         DELETE FROM auth.mfa_amr_claim_factors l USING s WHERE l.session_id OPERATOR(pg_catalog.=) s.session_id
     )
     DELETE FROM auth.mfa_amr_claims c USING s WHERE c.session_id OPERATOR(pg_catalog.=) s.session_id
     RETURNING 1";

/// Writes failure counts into the rows that count them: `$1` factor ids, `$2` whether the row
/// is the factor's recovery-code set, `$3` the failures, `$4` the event's time and `$5` the
/// lock's end (Unix microseconds; 0: no lock). A row that changed after its event (a later
/// failure its caller committed, a success, an unlock, a new set of codes) is left as it is. A
/// row that another transaction holds locked (a verification in flight, a caller that keeps
/// its transaction open) is skipped, not waited for (SKIP LOCKED: a caller must not be able to
/// hold the writer, and with it the trail, up): the statement returns those, which still
/// exist, to be written in a later round. Every name qualified: the audit writer runs it.
pub const COUNT_SQL: &str = "WITH e AS MATERIALIZED (
         SELECT e.factor_id, e.in_set, e.failures,
                'epoch'::pg_catalog.timestamptz OPERATOR(pg_catalog.+)
                    (e.us OPERATOR(pg_catalog.*) '1 microsecond'::pg_catalog.interval) AS at,
                CASE WHEN e.until_us OPERATOR(pg_catalog.<>) 0
                     THEN 'epoch'::pg_catalog.timestamptz OPERATOR(pg_catalog.+)
                          (e.until_us OPERATOR(pg_catalog.*) '1 microsecond'::pg_catalog.interval) END AS until
           FROM ROWS FROM (pg_catalog.unnest($1::pg_catalog.uuid[]), pg_catalog.unnest($2::pg_catalog.bool[]),
                           pg_catalog.unnest($3::pg_catalog.int4[]), pg_catalog.unnest($4::pg_catalog.int8[]),
                           pg_catalog.unnest($5::pg_catalog.int8[])) AS e(factor_id, in_set, failures, us, until_us)
     ), free_f AS MATERIALIZED (
         SELECT f.id FROM auth.mfa_factors f
          WHERE f.id OPERATOR(pg_catalog.=) ANY (SELECT e.factor_id FROM e WHERE NOT e.in_set)
            FOR UPDATE SKIP LOCKED
     ), free_s AS MATERIALIZED (
         SELECT s.id, s.mfa_factor_id FROM auth.mfa_recovery_code_sets s
          WHERE s.mfa_factor_id OPERATOR(pg_catalog.=) ANY (SELECT e.factor_id FROM e WHERE e.in_set)
            FOR UPDATE SKIP LOCKED
     ), f AS (
         UPDATE auth.mfa_factors t
            SET failed_attempts = e.failures, locked_until = e.until, updated_at = e.at
           FROM e JOIN free_f ON free_f.id OPERATOR(pg_catalog.=) e.factor_id
          WHERE NOT e.in_set AND t.id OPERATOR(pg_catalog.=) e.factor_id AND t.updated_at OPERATOR(pg_catalog.<) e.at
     ), s AS (
         UPDATE auth.mfa_recovery_code_sets t
            SET failed_verification_count = e.failures, verification_locked_until = e.until, updated_at = e.at
           FROM e JOIN free_s ON free_s.mfa_factor_id OPERATOR(pg_catalog.=) e.factor_id
          WHERE e.in_set AND t.id OPERATOR(pg_catalog.=) free_s.id AND t.updated_at OPERATOR(pg_catalog.<) e.at
     )
     SELECT e.factor_id, e.in_set FROM e
      WHERE CASE WHEN e.in_set
                 THEN NOT EXISTS (SELECT FROM free_s WHERE free_s.mfa_factor_id OPERATOR(pg_catalog.=) e.factor_id)
                      AND EXISTS (SELECT FROM auth.mfa_recovery_code_sets x
                                   WHERE x.mfa_factor_id OPERATOR(pg_catalog.=) e.factor_id)
                 ELSE NOT EXISTS (SELECT FROM free_f WHERE free_f.id OPERATOR(pg_catalog.=) e.factor_id)
                      AND EXISTS (SELECT FROM auth.mfa_factors x WHERE x.id OPERATOR(pg_catalog.=) e.factor_id) END";

/// Writes the counts of `entries` (those that carry one, the newest per row) with
/// [`COUNT_SQL`]; returns the ones whose rows another transaction holds, to try again.
pub(super) fn write_counts(client: &mut pgrx::spi::SpiClient<'_>, entries: &[Entry]) -> Vec<Entry> {
    // The newest entry per row (factor, in its recovery-code set or not): it holds the count
    // that every older one of the row led up to.
    let mut newest: std::collections::HashMap<([u8; 16], bool), Entry> = std::collections::HashMap::new();
    for e in entries {
        let (Some(c), Some(f)) = (e.count_of(), e.factor_of()) else { continue };
        let slot = newest.entry((f, c.in_recovery_set)).or_insert(*e);
        if (slot.at_us, slot.seq()) <= (e.at_us, e.seq()) {
            *slot = *e;
        }
    }
    if newest.is_empty() {
        return Vec::new();
    }
    let (mut ids, mut in_set, mut failures, mut us, mut until) = (vec![], vec![], vec![], vec![], vec![]);
    for ((f, set), e) in &newest {
        let c = e.count_of().expect("kept for its count");
        ids.push(pgrx::Uuid::from_bytes(*f));
        in_set.push(*set);
        failures.push(i32::try_from(c.failures).unwrap_or(i32::MAX));
        us.push(e.at_us);
        until.push(c.locked_until_us.unwrap_or(0));
    }
    let args: [DatumWithOid; 5] = [ids.into(), in_set.into(), failures.into(), us.into(), until.into()];
    let held: Vec<([u8; 16], bool)> = client
        .update(COUNT_SQL, None, &args)
        .or_raise()
        .filter_map(|r| Some((*r.get::<pgrx::Uuid>(1).ok()??.as_bytes(), r.get::<bool>(2).ok()??)))
        .collect();
    let mut held: Vec<Entry> = held.iter().filter_map(|k| newest.get(k).copied()).collect();
    held.sort_by_key(|e| (e.at_us, e.seq())); // oldest first (the writer gives up the oldest)
    held
}

/// Inserts `events` (in the current transaction), signs out the users of those that sign
/// out, and, with mfa_auth.audit_log_server, writes each recorded one to the server log.
pub(super) fn write(client: &mut pgrx::spi::SpiClient<'_>, all: &[Entry]) {
    let signing_out: Vec<&Entry> = all.iter().filter(|e| e.signs_out()).collect();
    if !signing_out.is_empty() {
        let users: Vec<Option<pgrx::Uuid>> = signing_out.iter().map(|e| uuid(e.user_of())).collect();
        let sessions: Vec<Option<pgrx::Uuid>> = signing_out.iter().map(|e| uuid(e.session_of())).collect();
        let args: [DatumWithOid; 2] = [users.into(), sessions.into()];
        client.update(SIGN_OUT_SQL, None, &args).or_raise();
    }
    let kept: Vec<Entry>;
    let events: &[Entry] = if all.iter().all(Entry::has_row) {
        all
    } else {
        kept = all.iter().filter(|e| e.has_row()).copied().collect();
        &kept
    };
    if events.is_empty() {
        return;
    }
    let payloads: Vec<serde_json::Value> = events.iter().map(Entry::payload_value).collect();
    let ids: Vec<pgrx::Uuid> = events.iter().map(|e| pgrx::Uuid::from_bytes(e.id)).collect();
    let us: Vec<i64> = events.iter().map(|e| e.at_us).collect();
    let ev: Vec<String> = events.iter().map(|e| e.event().map(Event::name).unwrap_or("unknown").to_string()).collect();
    let outcome: Vec<Option<String>> = events.iter().map(|e| e.outcome_of().map(|o| o.name().to_string())).collect();
    let users: Vec<Option<pgrx::Uuid>> = events.iter().map(|e| uuid(e.user_of())).collect();
    let factors: Vec<Option<pgrx::Uuid>> = events.iter().map(|e| uuid(e.factor_of())).collect();
    let sessions: Vec<Option<pgrx::Uuid>> = events.iter().map(|e| uuid(e.session_of())).collect();
    let ips: Vec<Option<pgrx::Inet>> = events.iter().map(|e| e.ip_of().map(|s| pgrx::Inet(s.to_string()))).collect();
    let log_lines: Vec<String> =
        if crate::settings::audit_log_server() { payloads.iter().map(|p| p.to_string()).collect() } else { Vec::new() };
    let json: Vec<pgrx::JsonB> = payloads.into_iter().map(pgrx::JsonB).collect();
    let args: [DatumWithOid; 9] = [
        ids.into(),
        us.into(),
        ev.into(),
        outcome.into(),
        users.into(),
        factors.into(),
        sessions.into(),
        ips.into(),
        json.into(),
    ];
    client.update(INSERT_SQL, None, &args).or_raise();
    for p in &log_lines {
        log!("mfa_auth audit: {p}");
    }
}

/// Without the library preloaded, and at PREPARE TRANSACTION: the events are inserted in the
/// caller's transaction, as the table's owner (the caller may be any role: a PREPARE runs no
/// function of the extension), under the pinned search_path.
pub(super) fn insert_here(events: &[Entry]) {
    crate::pg::schema::pinned(|| {
        Spi::connect_mut(|client| {
            // A database still on 0.2.0's SQL (before ALTER EXTENSION mfa_auth UPDATE) has no
            // trail. The table's OID is kept for the backend and checked in the relation cache
            // (no statement per event); a dropped and re-created extension is looked up again.
            let cached = TABLE.get().filter(|(oid, _)| {
                // SAFETY: a syscache look-up by OID; NULL when no such relation exists.
                let name = unsafe { pg_sys::get_rel_name(*oid) };
                !name.is_null() && unsafe { core::ffi::CStr::from_ptr(name) }.to_bytes() == b"mfa_audit_log"
            });
            let table = cached.or_else(|| {
                let row = client
                    .select(
                        "SELECT c.oid, c.relowner FROM pg_catalog.pg_class c
                          WHERE c.oid OPERATOR(pg_catalog.=) pg_catalog.to_regclass('auth.mfa_audit_log')",
                        None,
                        &[],
                    )
                    .or_raise();
                if row.is_empty() {
                    return None;
                }
                let row = row.first();
                Some((row.get::<pg_sys::Oid>(1).or_raise()?, row.get::<pg_sys::Oid>(2).or_raise()?))
            });
            TABLE.set(table);
            if let Some((_, owner)) = table {
                crate::session::as_owner(owner, || write(client, events));
            }
        })
    });
}

thread_local! {
    /// auth.mfa_audit_log's OID and owner, once seen by this backend.
    static TABLE: std::cell::Cell<Option<(pg_sys::Oid, pg_sys::Oid)>> = const { std::cell::Cell::new(None) };
}

/// Runs `f` in a transaction of its own; an error in it is logged as a WARNING and rolls the
/// transaction back (the worker goes on). False on error.
pub(super) fn in_transaction(what: &str, f: impl FnOnce()) -> bool {
    unsafe {
        pg_sys::SetCurrentStatementStartTimestamp();
        pg_sys::StartTransactionCommand();
        pg_sys::PushActiveSnapshot(pg_sys::GetTransactionSnapshot());
    }
    let ok = PgTryBuilder::new(AssertUnwindSafe(|| {
        f();
        true
    }))
    .catch_others(|e| {
        let msg = match &e {
            pg_sys::panic::CaughtError::PostgresError(r) | pg_sys::panic::CaughtError::ErrorReport(r) => {
                r.message().to_string()
            }
            pg_sys::panic::CaughtError::RustPanic { ereport, .. } => ereport.message().to_string(),
        };
        warning!("mfa_auth audit writer: {what} failed: {msg}");
        false
    })
    .execute();
    unsafe {
        if ok {
            pg_sys::PopActiveSnapshot();
            pg_sys::CommitTransactionCommand();
        } else {
            pg_sys::AbortCurrentTransaction();
        }
    }
    ok
}

pub(super) const RETENTION_SQL: &str = "WITH old AS (
         SELECT l.id FROM auth.mfa_audit_log l
          WHERE l.created_at OPERATOR(pg_catalog.<) (pg_catalog.clock_timestamp() OPERATOR(pg_catalog.-) $1)
          ORDER BY l.created_at LIMIT $2
     )
     DELETE FROM auth.mfa_audit_log d USING old WHERE d.id OPERATOR(pg_catalog.=) old.id";

/// Deletes up to `batch` rows older than `older_than` along the created_at index; returns
/// how many.
pub(super) fn delete_older(client: &mut pgrx::spi::SpiClient<'_>, older_than: Interval, batch: i32) -> i64 {
    let args: [DatumWithOid; 2] = [older_than.into(), i64::from(batch).into()];
    client.update(RETENTION_SQL, None, &args).or_raise().len() as i64
}
