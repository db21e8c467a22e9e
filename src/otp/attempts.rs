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
//! clearing touch only that window. When the window is full the least recently used
//! slot in it is evicted, so the table never grows and never refuses an entry; an
//! evicted factor falls back to the counter persisted in its table row.
//!
//! Pure Rust, no pgrx: times are Unix microseconds passed in by the caller.

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
    /// Use stamp for LRU eviction; 0: the slot is empty.
    last_used: u64,
}

impl Slot {
    const EMPTY: Slot = Slot { id: [0; 16], failures: 0, locked_until: 0, last_used: 0 };
}

/// The limits in force when a failure is counted.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Failures at which the factor locks (at least 1).
    pub max_failures: u32,
    /// How long a lock lasts, in microseconds.
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

/// Counts one failure on top of `prior` earlier ones.
pub fn count_failure(prior: u32, now_us: i64, limits: Limits) -> Counted {
    let failures = prior.saturating_add(1);
    let locked_until = (failures >= limits.max_failures.max(1)).then(|| now_us.saturating_add(limits.lockout_us));
    Counted { failures, locked_until }
}

/// A bounded table of factor id → recent failures. `N` must be a multiple of [`WAYS`].
#[repr(C)]
pub struct AttemptTable<const N: usize> {
    tick: u64,
    evictions: u64,
    slots: [Slot; N],
}

impl<const N: usize> Default for AttemptTable<N> {
    fn default() -> Self {
        Self::new()
    }
}

/// splitmix64's finaliser: spreads UUIDs (v7 ids share their leading timestamp bits).
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

impl<const N: usize> AttemptTable<N> {
    const WINDOWS: usize = {
        assert!(N >= WAYS && N % WAYS == 0, "N must be a positive multiple of WAYS");
        N / WAYS
    };

    pub const fn new() -> Self {
        AttemptTable { tick: 0, evictions: 0, slots: [Slot::EMPTY; N] }
    }

    fn window(id: &[u8; 16]) -> std::ops::Range<usize> {
        let hi = u64::from_le_bytes(id[..8].try_into().expect("8 bytes"));
        let lo = u64::from_le_bytes(id[8..].try_into().expect("8 bytes"));
        let w = (mix(hi ^ lo.rotate_left(29)) % Self::WINDOWS as u64) as usize;
        w * WAYS..(w + 1) * WAYS
    }

    fn find(&self, id: &[u8; 16]) -> Option<usize> {
        Self::window(id).find(|&i| self.slots[i].last_used != 0 && self.slots[i].id == *id)
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
    /// two is the prior count.
    pub fn record_failure(&mut self, id: &[u8; 16], persisted: u32, now_us: i64, limits: Limits) -> Counted {
        let prior = self.failures(id, now_us).max(persisted);
        let counted = count_failure(prior, now_us, limits);
        let stamp = self.stamp();
        let i = match self.find(id) {
            Some(i) => i,
            None => {
                // An empty slot, else the least recently used one of the window.
                let victim = Self::window(id).min_by_key(|&i| self.slots[i].last_used).expect("WAYS > 0");
                if self.slots[victim].last_used != 0 {
                    self.evictions += 1;
                }
                victim
            }
        };
        self.slots[i] = Slot {
            id: *id,
            failures: counted.failures,
            locked_until: counted.locked_until.unwrap_or(0),
            last_used: stamp,
        };
        counted
    }

    /// Forgets `id`'s failures (a successful verification, or an administrator's unlock).
    pub fn clear(&mut self, id: &[u8; 16]) {
        if let Some(i) = self.find(id) {
            self.slots[i] = Slot::EMPTY;
        }
    }

    /// Slots in use and evictions so far.
    pub fn usage(&self) -> (usize, u64) {
        (self.slots.iter().filter(|s| s.last_used != 0).count(), self.evictions)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: Limits = Limits { max_failures: 5, lockout_us: 300_000_000 };

    fn id(n: u128) -> [u8; 16] {
        n.to_be_bytes()
    }

    #[test]
    fn locks_at_the_limit_and_unlocks_after_the_lockout() {
        let mut t = AttemptTable::<64>::new();
        let f = id(7);
        for n in 1..5 {
            assert_eq!(t.record_failure(&f, 0, 1_000, LIMITS), Counted { failures: n, locked_until: None });
            assert_eq!(t.locked_until(&f, 1_000), None);
        }
        let c = t.record_failure(&f, 0, 2_000, LIMITS);
        assert_eq!(c, Counted { failures: 5, locked_until: Some(2_000 + 300_000_000) });
        assert_eq!(t.locked_until(&f, 2_001), Some(300_002_000));
        // After the lock runs out the count starts afresh.
        let later = 300_002_000;
        assert_eq!(t.locked_until(&f, later), None);
        assert_eq!(t.failures(&f, later), 0);
        assert_eq!(t.record_failure(&f, 0, later, LIMITS).failures, 1);
    }

    #[test]
    fn resumes_from_the_persisted_count() {
        let mut t = AttemptTable::<64>::new();
        assert_eq!(t.record_failure(&id(1), 3, 0, LIMITS).failures, 4);
        // The larger of memory and the row wins.
        assert_eq!(t.record_failure(&id(1), 1, 0, LIMITS).failures, 5);
    }

    #[test]
    fn clear_forgets() {
        let mut t = AttemptTable::<64>::new();
        t.record_failure(&id(1), 0, 0, LIMITS);
        t.record_failure(&id(2), 0, 0, LIMITS);
        t.clear(&id(1));
        assert_eq!(t.failures(&id(1), 0), 0);
        assert_eq!(t.failures(&id(2), 0), 1);
        assert_eq!(t.usage().0, 1);
    }

    #[test]
    fn a_full_window_evicts_its_least_recently_used_entry() {
        let mut t = AttemptTable::<{ WAYS }>::new(); // one window: every id shares it
        for n in 0..WAYS as u128 {
            t.record_failure(&id(n), 0, 0, LIMITS);
        }
        t.record_failure(&id(0), 0, 0, LIMITS); // id 0 is now the most recent
        t.record_failure(&id(999), 0, 0, LIMITS); // evicts id 1, the oldest
        assert_eq!(t.usage(), (WAYS, 1));
        assert_eq!(t.failures(&id(1), 0), 0);
        assert_eq!(t.failures(&id(0), 0), 2);
        assert_eq!(t.failures(&id(999), 0), 1);
    }

    #[test]
    fn many_ids_stay_bounded_and_recent_ones_are_kept() {
        let mut t = AttemptTable::<1024>::new();
        for n in 0..100_000u128 {
            t.record_failure(&id(n.wrapping_mul(0x9e37_79b9_7f4a_7c15)), 0, 0, LIMITS);
        }
        let (used, evicted) = t.usage();
        assert_eq!(used, 1024);
        assert_eq!(evicted, 100_000 - 1024);
        let last = id(99_999u128.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        assert_eq!(t.failures(&last, 0), 1);
    }

    #[test]
    fn count_failure_saturates() {
        assert_eq!(count_failure(u32::MAX, i64::MAX, LIMITS), Counted { failures: u32::MAX, locked_until: Some(i64::MAX) });
        assert_eq!(count_failure(0, 0, Limits { max_failures: 0, lockout_us: 1 }).locked_until, Some(1));
    }
}
