//! Maintenance and monitoring, for the service role: auth.cleanup_challenges(),
//! auth.cleanup_challenges_batch() (the step of CALL auth.cleanup_challenges_batched()),
//! auth.rotate_secrets() (of CALL auth.rotate_secrets_batched()), auth.attempt_tracking(),
//! auth.cleanup_audit_log() and auth.audit_status(). The procedures are sql/maintenance.sql.

use pgrx::prelude::*;

use crate::challenges::cleanup::{check_batch_size, cleanup, cleanup_one_batch};
use crate::pg::error::{raise, require_writable, required, MfaError};

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
    require_writable("auth.cleanup_challenges()");
    let older_than = required(older_than, "older_than");
    cleanup(older_than, check_batch_size(batch_size))
}

/// Deletes one batch (at most `batch_size`) of challenges created before `cutoff`; returns
/// how many. The step of auth.cleanup_challenges_batched, which commits between calls.
#[pg_extern(volatile, security_definer)]
#[search_path(pg_catalog, pg_temp)]
fn cleanup_challenges_batch(cutoff: Option<TimestampWithTimeZone>, batch_size: default!(Option<i32>, 1000)) -> i64 {
    require_writable("auth.cleanup_challenges_batched()");
    let cutoff = required(cutoff, "cutoff");
    cleanup_one_batch(cutoff, check_batch_size(batch_size))
}

/// Re-encrypts stored TOTP secrets that are not sealed with the current key (plaintext ones
/// included), at most `max_rows` of them (NULL: 1000), in the caller's transaction;
/// returns how many. Run it after putting a new key first; once it returns 0 the old key
/// can be removed. CALL auth.rotate_secrets_batched() does them all, committing per batch.
#[pg_extern(volatile, security_definer)]
#[search_path(pg_catalog, pg_temp)]
fn rotate_secrets(max_rows: default!(Option<i32>, "NULL")) -> i64 {
    require_writable("auth.rotate_secrets()");
    crate::secrets::rotate(max_rows)
}

/// Shows how failed attempts are tracked: whether counts survive ROLLBACK, the shared
/// table's capacity, entries in use, evictions so far, and verifications refused because
/// their window held only protected entries. Since 0.2.0 (with `refusals`); its C symbol is
/// new, so that 0.1.0's definition keeps its own (below).
#[pg_extern(volatile, security_definer, name = "attempt_tracking")]
#[search_path(pg_catalog, pg_temp)]
fn attempt_tracking_v2() -> TableIterator<
    'static,
    (
        name!(survives_rollback, bool),
        name!(capacity, i32),
        name!(tracked_factors, i32),
        name!(evictions, i64),
        name!(refusals, i64),
    ),
> {
    TableIterator::once(crate::attempt_limits::tracking())
}

/// 0.1.0's auth.attempt_tracking() (four columns), still exported under its C symbol
/// `attempt_tracking_wrapper`: a database on 0.1.0's SQL calls it until `ALTER EXTENSION
/// mfa_auth UPDATE` replaces the definition (sql/mfa_auth--0.1.0--0.2.0.sql). Not in 0.2.0's SQL.
#[pg_extern(sql = false)]
fn attempt_tracking() -> TableIterator<
    'static,
    (name!(survives_rollback, bool), name!(capacity, i32), name!(tracked_factors, i32), name!(evictions, i64)),
> {
    let (durable, capacity, used, evicted, _) = crate::attempt_limits::tracking();
    TableIterator::once((durable, capacity, used, evicted))
}

/// Deletes audit rows older than `older_than` (default: mfa_auth.audit_retention; nothing when
/// that is 0), at most `batch_size` of them, along the created_at index (cost O(deleted));
/// returns how many.
#[pg_extern(volatile, security_definer)]
#[search_path(pg_catalog, pg_temp)]
fn cleanup_audit_log(older_than: default!(Option<Interval>, "NULL"), batch_size: default!(Option<i32>, 1000)) -> i64 {
    require_writable("auth.cleanup_audit_log()");
    let batch = required(batch_size, "batch_size");
    if !(1..=1_000_000).contains(&batch) {
        raise(MfaError::invalid("batch_size", "must be between 1 and 1000000"));
    }
    crate::audit::cleanup(older_than, batch)
}

/// How the audit trail runs: whether failures survive ROLLBACK (the library is preloaded),
/// the shared queue's capacity, events queued now, queued since the server started, lost
/// (no room) and not yet recorded, and the writers running.
#[pg_extern(volatile, security_definer)]
#[search_path(pg_catalog, pg_temp)]
fn audit_status() -> TableIterator<
    'static,
    (
        name!(survives_rollback, bool),
        name!(capacity, i32),
        name!(queued, i32),
        name!(queued_total, i64),
        name!(lost, i64),
        name!(writers, i32),
    ),
> {
    TableIterator::once(crate::audit::status())
}
