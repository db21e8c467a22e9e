//! Failed-attempt limits that survive ROLLBACK: the pgrx shell around
//! [`mfa_auth_core::attempts`].
//!
//! When the library is in `shared_preload_libraries`, a bounded attempt table lives in
//! shared memory behind one LWLock: a failure counts there the moment it happens, so a
//! caller who rolls its transaction back (or makes the statement fail afterwards) keeps
//! the count. The table columns `failed_attempts` / `locked_until` are still written with
//! the caller's transaction, so a committed count survives a restart or an eviction.
//!
//! Without preloading there is no shared memory: counts are only as durable as the
//! caller's transaction, and the self-service `auth.mfa_verify` refuses to run where the
//! caller controls the transaction (see [`require_durable_or_autocommit`]).

use std::sync::atomic::{AtomicBool, Ordering};

use pgrx::prelude::*;
use pgrx::{pg_shmem_init, PGRXSharedMemory, PgLwLock};

use crate::pg::error::{raise, MfaError};
use mfa_auth_core::attempts::{count_failure, Admission, AttemptTable, Counted, Limits};

/// Factors tracked at once (× 48 bytes of shared memory, about 384 kB).
pub const SLOTS: usize = 8192;

#[repr(transparent)]
pub struct Shared(AttemptTable<SLOTS>);

// SAFETY: plain integers and arrays of them, no pointers: valid in any process.
unsafe impl PGRXSharedMemory for Shared {}

static TABLE: PgLwLock<Shared> = unsafe { PgLwLock::new(c"mfa_auth_attempts") };

/// Set in the postmaster when preloading; inherited by every backend it forks.
static DURABLE: AtomicBool = AtomicBool::new(false);

/// A random SipHash key for the table's windows, made once per server start (in the
/// postmaster, when shared memory is set up). Without an OS random source the server
/// does not start: an unkeyed table could be flushed by a targeted flood.
fn random_key() -> [u64; 2] {
    let mut bytes = [0u8; 16];
    if let Err(e) = crate::otp::secret::random_bytes(&mut bytes) {
        crate::pg::error::raise(crate::pg::error::MfaError::Otp(e));
    }
    let (a, b) = bytes.split_at(8);
    [u64::from_le_bytes(a.try_into().expect("8 bytes")), u64::from_le_bytes(b.try_into().expect("8 bytes"))]
}

/// Called from _PG_init: reserves the shared table when the library is being preloaded.
pub fn init() {
    if unsafe { pg_sys::process_shared_preload_libraries_in_progress } {
        pg_shmem_init!(TABLE = Shared(AttemptTable::new(random_key())));
        DURABLE.store(true, Ordering::Relaxed);
    }
}

/// Whether failed attempts survive the caller's ROLLBACK (the library is preloaded).
pub fn durable() -> bool {
    DURABLE.load(Ordering::Relaxed)
}

fn limits() -> Limits {
    Limits {
        max_failures: u32::try_from(crate::settings::max_failed_attempts()).unwrap_or(1),
        lockout_us: i64::from(crate::settings::lockout_duration()) * 1_000_000,
    }
}

/// Whether the shared table holds a lock on `factor` that has not run out.
pub fn locked(factor: &[u8; 16]) -> bool {
    durable() && TABLE.share().0.locked_until(factor, crate::pg::clock::now_us()).is_some()
}

/// Counts one failure of `factor` on top of `persisted` (its row's count), in shared
/// memory when preloaded. The caller writes the result to the row as well.
///
/// Verification calls this *before* it evaluates a code and clears the count on success,
/// so whatever happens after (a wrong code, an error, a ROLLBACK) the attempt is counted.
/// When the shared table has no room that it may take (see [`mfa_auth_core::attempts`]),
/// nothing is evaluated: 53400, fail closed.
pub fn record_failure(factor: &[u8; 16], persisted: u32) -> Counted {
    let now = crate::pg::clock::now_us();
    if !durable() {
        return count_failure(persisted, now, limits());
    }
    let admission = TABLE.exclusive().0.record_failure(factor, persisted, now, limits());
    match admission {
        Admission::Counted(counted) => counted,
        Admission::Full => raise(MfaError::AttemptTableFull),
    }
}

/// Counts an attempt of `factor` before it is evaluated ([`record_failure`]), starting from
/// the failures its row holds (`row_failures`), or from none when the row's lock has run out.
pub fn count_attempt(factor: &[u8; 16], row_failures: i32, lock_ran_out: bool) -> Counted {
    let persisted = if lock_ran_out { 0 } else { row_failures.max(0) as u32 };
    record_failure(factor, persisted)
}

/// Forgets `factor`'s failures (a success, or an administrator's unlock).
pub fn clear(factor: &[u8; 16]) {
    if durable() {
        TABLE.exclusive().0.clear(factor);
    }
}

/// For the self-service path: without preloading, a verification inside a transaction
/// block or subtransaction could have its failure count rolled back by the caller, so
/// it is refused (fail closed). Service functions are not restricted: their callers are
/// trusted back ends that own the transaction.
pub fn require_durable_or_autocommit(function: &'static str) {
    if durable() {
        return;
    }
    let in_block = unsafe { pg_sys::IsTransactionBlock() || pg_sys::GetCurrentTransactionNestLevel() > 1 };
    if in_block {
        raise(MfaError::AttemptsNotDurable(function));
    }
}

/// What auth.attempt_tracking() reports: whether counts survive ROLLBACK, the shared
/// table's capacity, entries in use, evictions so far, and verifications refused because
/// their window held only protected entries.
pub fn tracking() -> (bool, i32, i32, i64, i64) {
    let (used, evicted, refused) = if durable() { TABLE.share().0.usage() } else { (0, 0, 0) };
    let capacity = if durable() { SLOTS as i32 } else { 0 };
    (durable(), capacity, used as i32, evicted as i64, refused as i64)
}
