//! Failed-attempt bookkeeping that a ROLLBACK cannot undo.
//!
//! The table columns `failed_attempts` / `locked_until` are transactional: a caller who
//! controls its transaction (`BEGIN; verify wrong code; ROLLBACK;`) would get the count
//! rolled back with everything else. This table lives in shared memory instead (the SQL
//! layer puts it there behind an LWLock when the library is preloaded), so a failure
//! counts the moment it happens.
//!
//! Layout: a fixed array of `N` slots, set-associative: a factor id hashes to a window
//! of [`WAYS`] consecutive slots and lives in one of them. Looking up, counting and
//! clearing touch only that window.
//!
//! The table must not be flushable: an attacker who can make many factors fail (throw-away
//! factors of their own) must not be able to push a victim's count out of it. So
//! - the window is chosen with a keyed hash (SipHash-2-4 under a random key made at server
//!   start): which factor ids share a window cannot be computed from outside;
//! - an entry is *protected* while it matters: while its lock runs, and for one lockout
//!   duration after its last failure (`keep_until`). Only unprotected entries are evicted
//!   (the least recently used first); when a window holds nothing but protected entries, a
//!   newcomer is refused ([`Admission::Full`]) instead of someone else's count being
//!   forgotten. The SQL layer answers that refusal with 53400, before evaluating any code.
//!
//! Pure Rust, no pgrx: times are Unix microseconds passed in by the caller.

#[allow(deprecated)] // SipHash-2-4 with explicit keys; std keeps it, only unkeyed use moved on.
use std::hash::{Hasher, SipHasher};

/// Slots in one associativity window.
pub const WAYS: usize = 16;

/// One factor's recent failures.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(C)]
pub struct Slot {
    id: [u8; 16],
    /// Failed attempts since the last success or expired lock.
    failures: u32,
    /// Unix microseconds until which the factor is locked; 0: not locked.
    locked_until: i64,
    /// Unix microseconds until which this entry must not be evicted.
    keep_until: i64,
    /// Use stamp for LRU eviction; 0: the slot is empty.
    last_used: u64,
}

impl Slot {
    const EMPTY: Slot = Slot { id: [0; 16], failures: 0, locked_until: 0, keep_until: 0, last_used: 0 };
}

/// The limits in force when a failure is counted.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Failures at which the factor locks (at least 1).
    pub max_failures: u32,
    /// How long a lock lasts, in microseconds; also how long an entry is kept after its
    /// last failure.
    pub lockout_us: i64,
}

/// What counting one failure decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Counted {
    /// Failures so far, this one included.
    pub failures: u32,
    /// Set when this failure locked the factor: until when (Unix microseconds).
    pub locked_until: Option<i64>,
}

/// The answer of [`AttemptTable::record_failure`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Admission {
    /// The failure is counted in the table.
    Counted(Counted),
    /// The factor has no entry and its window holds only protected entries: nothing was
    /// counted or evicted, and the caller must refuse the attempt.
    Full,
}

/// Counts one failure on top of `prior` earlier ones.
pub fn count_failure(prior: u32, now_us: i64, limits: Limits) -> Counted {
    let failures = prior.saturating_add(1);
    let locked_until = (failures >= limits.max_failures.max(1)).then(|| now_us.saturating_add(limits.lockout_us));
    Counted { failures, locked_until }
}

/// A bounded table of factor id → recent failures. `N` must be a multiple of [`WAYS`].
#[repr(C)]
pub struct AttemptTable<const N: usize> {
    /// SipHash key choosing each id's window; random per server start.
    key: [u64; 2],
    tick: u64,
    evictions: u64,
    refusals: u64,
    slots: [Slot; N],
}

impl<const N: usize> AttemptTable<N> {
    const WINDOWS: usize = {
        assert!(N >= WAYS && N.is_multiple_of(WAYS), "N must be a positive multiple of WAYS");
        N / WAYS
    };

    /// An empty table whose windows are chosen under `key` (make it random: see the
    /// module comment).
    pub const fn new(key: [u64; 2]) -> Self {
        AttemptTable { key, tick: 0, evictions: 0, refusals: 0, slots: [Slot::EMPTY; N] }
    }

    #[allow(deprecated)]
    fn window(&self, id: &[u8; 16]) -> std::ops::Range<usize> {
        let mut h = SipHasher::new_with_keys(self.key[0], self.key[1]);
        h.write(id);
        let w = (h.finish() % Self::WINDOWS as u64) as usize;
        w * WAYS..(w + 1) * WAYS
    }

    fn find(&self, id: &[u8; 16]) -> Option<usize> {
        self.window(id).find(|&i| self.slots[i].last_used != 0 && self.slots[i].id == *id)
    }

    fn stamp(&mut self) -> u64 {
        self.tick += 1;
        self.tick
    }

    /// Until when `id` is locked, if it is locked at `now_us`.
    pub fn locked_until(&self, id: &[u8; 16], now_us: i64) -> Option<i64> {
        let slot = &self.slots[self.find(id)?];
        (slot.locked_until > now_us).then_some(slot.locked_until)
    }

    /// Failures counted for `id` that still matter at `now_us` (0 after an expired lock).
    pub fn failures(&self, id: &[u8; 16], now_us: i64) -> u32 {
        match self.find(id) {
            Some(i) if self.slots[i].locked_until == 0 || self.slots[i].locked_until > now_us => self.slots[i].failures,
            _ => 0,
        }
    }

    /// Counts one failure of `id`. `persisted` is the count its table row holds (an
    /// entry evicted earlier, or lost in a restart, resumes from it); the larger of the
    /// two is the prior count. A new entry takes an empty slot of the window, else the
    /// least recently used unprotected one; with none, [`Admission::Full`].
    pub fn record_failure(&mut self, id: &[u8; 16], persisted: u32, now_us: i64, limits: Limits) -> Admission {
        let i = match self.find(id) {
            Some(i) => i,
            None => {
                let victim = self
                    .window(id)
                    .filter(|&i| self.slots[i].last_used == 0 || self.slots[i].keep_until <= now_us)
                    .min_by_key(|&i| self.slots[i].last_used);
                let Some(victim) = victim else {
                    self.refusals += 1;
                    return Admission::Full;
                };
                if self.slots[victim].last_used != 0 {
                    self.evictions += 1;
                }
                self.slots[victim] = Slot::EMPTY;
                victim
            }
        };
        let prior = self.failures(id, now_us).max(persisted);
        let counted = count_failure(prior, now_us, limits);
        let locked_until = counted.locked_until.unwrap_or(0);
        self.slots[i] = Slot {
            id: *id,
            failures: counted.failures,
            locked_until,
            keep_until: locked_until.max(now_us.saturating_add(limits.lockout_us)),
            last_used: self.stamp(),
        };
        Admission::Counted(counted)
    }

    /// Forgets `id`'s failures (a successful verification, or an administrator's unlock).
    pub fn clear(&mut self, id: &[u8; 16]) {
        if let Some(i) = self.find(id) {
            self.slots[i] = Slot::EMPTY;
        }
    }

    /// Slots in use, evictions so far, and newcomers refused because their window was full
    /// of protected entries.
    pub fn usage(&self) -> (usize, u64, u64) {
        (self.slots.iter().filter(|s| s.last_used != 0).count(), self.evictions, self.refusals)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: Limits = Limits { max_failures: 5, lockout_us: 300_000_000 };
    const KEY: [u64; 2] = [0x0123_4567_89ab_cdef, 0xfedc_ba98_7654_3210];

    fn id(n: u128) -> [u8; 16] {
        n.to_be_bytes()
    }

    fn counted(a: Admission) -> Counted {
        match a {
            Admission::Counted(c) => c,
            Admission::Full => panic!("refused as full"),
        }
    }

    #[test]
    fn locks_at_the_limit_and_unlocks_after_the_lockout() {
        let mut t = AttemptTable::<64>::new(KEY);
        let f = id(7);
        for n in 1..5 {
            assert_eq!(counted(t.record_failure(&f, 0, 1_000, LIMITS)), Counted { failures: n, locked_until: None });
            assert_eq!(t.locked_until(&f, 1_000), None);
        }
        let c = counted(t.record_failure(&f, 0, 2_000, LIMITS));
        assert_eq!(c, Counted { failures: 5, locked_until: Some(2_000 + 300_000_000) });
        assert_eq!(t.locked_until(&f, 2_001), Some(300_002_000));
        // After the lock runs out the count starts afresh.
        let later = 300_002_000;
        assert_eq!(t.locked_until(&f, later), None);
        assert_eq!(t.failures(&f, later), 0);
        assert_eq!(counted(t.record_failure(&f, 0, later, LIMITS)).failures, 1);
    }

    #[test]
    fn resumes_from_the_persisted_count() {
        let mut t = AttemptTable::<64>::new(KEY);
        assert_eq!(counted(t.record_failure(&id(1), 3, 0, LIMITS)).failures, 4);
        // The larger of memory and the row wins.
        assert_eq!(counted(t.record_failure(&id(1), 1, 0, LIMITS)).failures, 5);
    }

    #[test]
    fn clear_forgets() {
        let mut t = AttemptTable::<64>::new(KEY);
        t.record_failure(&id(1), 0, 0, LIMITS);
        t.record_failure(&id(2), 0, 0, LIMITS);
        t.clear(&id(1));
        assert_eq!(t.failures(&id(1), 0), 0);
        assert_eq!(t.failures(&id(2), 0), 1);
        assert_eq!(t.usage().0, 1);
    }

    #[test]
    fn a_full_window_of_protected_entries_refuses_the_newcomer() {
        let mut t = AttemptTable::<{ WAYS }>::new(KEY); // one window: every id shares it
        for n in 0..WAYS as u128 {
            t.record_failure(&id(n), 0, 0, LIMITS);
        }
        // Every entry failed within the lockout duration: none may be forgotten.
        assert_eq!(t.record_failure(&id(999), 0, 1, LIMITS), Admission::Full);
        assert_eq!(t.usage(), (WAYS, 0, 1));
        for n in 0..WAYS as u128 {
            assert_eq!(t.failures(&id(n), 1), 1);
        }
        // An entry already in the table still counts.
        assert_eq!(counted(t.record_failure(&id(3), 0, 2, LIMITS)).failures, 2);
    }

    #[test]
    fn entries_older_than_the_lockout_are_evicted_least_recently_used_first() {
        let mut t = AttemptTable::<{ WAYS }>::new(KEY);
        for n in 0..WAYS as u128 {
            t.record_failure(&id(n), 0, n as i64, LIMITS);
        }
        let later = LIMITS.lockout_us + WAYS as i64; // every entry's keep_until has passed
        t.record_failure(&id(0), 0, later, LIMITS); // id 0 is now the most recent (and protected again)
        counted(t.record_failure(&id(999), 0, later, LIMITS)); // evicts id 1, the oldest
        assert_eq!(t.usage(), (WAYS, 1, 0));
        assert_eq!(t.failures(&id(1), later), 0);
        assert_eq!(t.failures(&id(0), later), 2);
        assert_eq!(t.failures(&id(999), later), 1);
    }

    #[test]
    fn a_lock_is_kept_for_as_long_as_it_runs() {
        let limits = Limits { max_failures: 1, lockout_us: 1_000 };
        let long = Limits { max_failures: 1, lockout_us: 1_000_000 };
        let mut t = AttemptTable::<{ WAYS }>::new(KEY);
        assert_eq!(counted(t.record_failure(&id(1), 0, 0, long)).locked_until, Some(1_000_000));
        for n in 2..=WAYS as u128 {
            t.record_failure(&id(n), 0, 0, limits);
        }
        // The short entries are evictable after 1 ms; the long lock is not, however old.
        for n in 0..400u128 {
            counted(t.record_failure(&id(1_000 + n), 0, 2_000 * (n as i64 + 1), limits));
        }
        assert_eq!(t.locked_until(&id(1), 999_999), Some(1_000_000));
    }

    /// The flood of the trust-model issue: a victim locked by failures that were rolled back
    /// (so only this table knows), then 20 000 throw-away factors failing once each. With
    /// every window protected the flood is refused, never the victim forgotten.
    #[test]
    fn a_flood_of_throwaway_failures_cannot_evict_a_locked_victim() {
        let mut t = AttemptTable::<8192>::new(KEY);
        let victim = id(0xdead_beef);
        for _ in 0..8 {
            t.record_failure(&victim, 0, 0, LIMITS);
        }
        let mut refused = 0;
        for n in 0..20_000u128 {
            let now = 1 + n as i64 * 1_000; // 20 s of flooding, within the lockout
            if t.record_failure(&id(n.wrapping_mul(0x9e37_79b9_7f4a_7c15)), 0, now, LIMITS) == Admission::Full {
                refused += 1;
            }
        }
        assert!(t.locked_until(&victim, 20_000_001).is_some());
        assert_eq!(t.usage().1, 0, "nothing protected was evicted");
        assert!(refused > 20_000 - 8192, "refused {refused}");
    }

    #[test]
    fn the_key_decides_which_ids_share_a_window() {
        let a = AttemptTable::<1024>::new(KEY);
        let b = AttemptTable::<1024>::new([1, 2]);
        let ids: Vec<[u8; 16]> = (0..64u128).map(id).collect();
        let same = ids.iter().filter(|i| a.window(i) == b.window(i)).count();
        // 64 windows: by chance about one in 64 agrees.
        assert!(same < 8, "{same} of 64 ids kept their window under another key");
        // Under one key the ids spread over the windows.
        let mut used: Vec<usize> = ids.iter().map(|i| a.window(i).start).collect();
        used.sort_unstable();
        used.dedup();
        assert!(used.len() > 40, "{} windows for 64 ids", used.len());
    }

    #[test]
    fn many_unprotected_ids_stay_bounded_and_recent_ones_are_kept() {
        let short = Limits { max_failures: 5, lockout_us: 1 };
        let mut t = AttemptTable::<1024>::new(KEY);
        for n in 0..100_000u128 {
            counted(t.record_failure(&id(n.wrapping_mul(0x9e37_79b9_7f4a_7c15)), 0, n as i64 * 10, short));
        }
        let (used, evicted, refused) = t.usage();
        assert_eq!((used, refused), (1024, 0));
        assert_eq!(evicted, 100_000 - 1024);
        let last = id(99_999u128.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        assert_eq!(t.failures(&last, 999_990), 1);
    }

    #[test]
    fn count_failure_saturates() {
        assert_eq!(
            count_failure(u32::MAX, i64::MAX, LIMITS),
            Counted { failures: u32::MAX, locked_until: Some(i64::MAX) }
        );
        assert_eq!(count_failure(0, 0, Limits { max_failures: 0, lockout_us: 1 }).locked_until, Some(1));
    }
}
