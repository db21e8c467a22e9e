//! Removing old challenges, in batches on the created_at index.

use pgrx::datum::DatumWithOid;
use pgrx::prelude::*;
use pgrx::spi::SpiClient;

use crate::audit::{self, Event, Traits};
use crate::pg::error::{raise, required, MfaError, OrRaise};
use crate::pg::spi::{run, Stmt};

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

/// `batch_size` as given: at least 1 (22023 otherwise).
pub fn check_batch_size(batch_size: Option<i32>) -> i32 {
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

/// Deletes challenges created more than `older_than` ago (not negative: 22023), `batch_size`
/// rows per statement, skipping rows a concurrent verification holds, all in the caller's
/// transaction. Returns how many.
pub fn cleanup(older_than: Interval, batch_size: i32) -> i64 {
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

/// Deletes one batch (at most `batch_size`) of challenges created before `cutoff`; how many.
pub fn cleanup_one_batch(cutoff: TimestampWithTimeZone, batch_size: i32) -> i64 {
    let n = Spi::connect_mut(|client| cleanup_batch(client, cutoff, batch_size));
    audit_cleanup(n);
    n
}
