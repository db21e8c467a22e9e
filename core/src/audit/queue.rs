//! The bounded queue in shared memory between the backends that make events and the writers
//! (one per database) that insert them, and the count of events it had no room for.

use super::*;

/// A database's worker: NONE, STARTING (registered, not yet running) or RUNNING.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(C)]
pub struct WorkerSlot {
    pub database: u32,
    state: u32,
    since_us: i64,
    pid: i32,
    _pad: i32,
    /// The last push (seq) of its database this worker has committed.
    written: u64,
}

const NONE: u32 = 0;
const STARTING: u32 = 1;
const RUNNING: u32 = 2;

impl WorkerSlot {
    const EMPTY: WorkerSlot = WorkerSlot { database: 0, state: NONE, since_us: 0, pid: 0, _pad: 0, written: 0 };
    pub fn pid(&self) -> Option<i32> {
        (self.state == RUNNING).then_some(self.pid)
    }
}

/// What [`Queue::start_worker`] decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Start {
    /// A worker for the database runs or is starting.
    Running,
    /// The caller must start one (and call [`Queue::start_failed`] if it cannot).
    StartOne,
    /// Every worker slot is taken by other databases: the events wait in the queue.
    NoSlot,
}

/// The events between their backends and the workers. `N` slots.
#[repr(C)]
pub struct Queue<const N: usize> {
    entries: [Entry; N],
    workers: [WorkerSlot; MAX_DATABASES],
    used: usize,
    next: usize,
    seq: u64,
    /// Losses of databases that found no free [`Losses`] slot (more than [`MAX_DATABASES`]
    /// databases losing events at once): counted without their database.
    lost: u64,
    losses: [Losses; MAX_DATABASES],
    pushed: u64,
    /// Set when a database's writer could not be started (so its events may wait without
    /// one); cleared by [`Queue::orphaned`] when it finds none.
    orphans: bool,
    /// The database the reserved writer last tried to serve, and how many of its tries in a
    /// row never reported in (a database that cannot be connected to: dropped meanwhile).
    fallback_database: u32,
    fallback_tries: u32,
}

impl<const N: usize> Default for Queue<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> Queue<N> {
    pub const fn new() -> Queue<N> {
        Queue {
            entries: [Entry::EMPTY; N],
            workers: [WorkerSlot::EMPTY; MAX_DATABASES],
            used: 0,
            next: 0,
            seq: 0,
            lost: 0,
            losses: [Losses::EMPTY; MAX_DATABASES],
            pushed: 0,
            orphans: false,
            fallback_database: 0,
            fallback_tries: 0,
        }
    }

    /// The reserved writer is about to connect to `database`: how many tries in a row (this
    /// one included) it has made for it without reporting in.
    pub fn fallback_try(&mut self, database: u32) -> u32 {
        if self.fallback_database != database {
            self.fallback_database = database;
            self.fallback_tries = 0;
        }
        self.fallback_tries += 1;
        self.fallback_tries
    }

    /// Queues `e`; false (and counted as lost) when the queue is full.
    pub fn push(&mut self, e: &Entry) -> bool {
        self.push_seq(e).is_some()
    }

    /// Queues `e` and returns its place in the order of pushes (None, counted as lost: full).
    pub fn push_seq(&mut self, e: &Entry) -> Option<u64> {
        if self.used >= N {
            self.lose(e, 1);
            return None;
        }
        for k in 0..N {
            let i = (self.next + k) % N;
            if self.entries[i].state == FREE {
                self.seq += 1;
                self.entries[i] = Entry { state: FILLED, seq: self.seq, ..*e };
                self.used += 1;
                self.pushed += 1;
                self.next = (i + 1) % N;
                return Some(self.seq);
            }
        }
        self.lose(e, 1);
        None
    }

    /// The worker of `database` committed the events it took up to push `seq`.
    pub fn mark_written(&mut self, database: u32, seq: u64) {
        for w in self.workers.iter_mut().filter(|w| w.database == database && w.state != NONE) {
            w.written = w.written.max(seq);
        }
    }

    /// Whether push `seq` of `database` is written: no longer queued, and either its worker
    /// has committed it or no worker of the database is running or starting (a worker stops
    /// only once everything it took is committed).
    pub fn is_written(&self, database: u32, seq: u64) -> bool {
        if self.entries.iter().any(|e| e.state == FILLED && e.seq == seq) {
            return false;
        }
        let mut active = self.workers.iter().filter(|w| w.database == database && w.state != NONE).peekable();
        active.peek().is_none() || active.any(|w| w.written >= seq)
    }

    /// Counts `n` events of `e`'s kind and outcome as lost, in `e`'s database.
    pub fn lose(&mut self, e: &Entry, n: u32) {
        let outcome = (e.flags & HAS_OUTCOME != 0).then_some(e.outcome);
        self.lose_kind(e.database, e.event, outcome, n);
    }

    /// Counts `n` events of database `database`, kind `event` and `outcome` as lost.
    pub fn lose_kind(&mut self, database: u32, event: u8, outcome: Option<u8>, n: u32) {
        if n == 0 {
            return;
        }
        let slot = match self.losses.iter().position(|l| l.total > 0 && l.database == database) {
            Some(i) => Some(i),
            None => self.losses.iter().position(|l| l.total == 0),
        };
        match slot {
            Some(i) => {
                self.losses[i].database = database;
                self.losses[i].add(event, outcome, n);
            }
            None => self.lost += u64::from(n),
        }
    }

    /// The losses of `database` not yet recorded, cleared.
    pub fn take_losses(&mut self, database: u32) -> Option<Losses> {
        let l = self.losses.iter_mut().find(|l| l.total > 0 && l.database == database)?;
        Some(std::mem::replace(l, Losses::EMPTY))
    }

    fn has_losses(&self, database: u32) -> bool {
        self.losses.iter().any(|l| l.total > 0 && l.database == database)
    }

    /// Moves up to `max` of `database`'s events into `out`, oldest first.
    pub fn take(&mut self, database: u32, max: usize, out: &mut Vec<Entry>) -> usize {
        let mut found: Vec<(u64, usize)> = Vec::new();
        for (i, e) in self.entries.iter().enumerate() {
            if e.state == FILLED && e.database == database {
                found.push((e.seq, i));
            }
        }
        found.sort_unstable();
        found.truncate(max);
        for &(_, i) in &found {
            out.push(self.entries[i]);
            self.entries[i].state = FREE;
            self.used -= 1;
        }
        found.len()
    }

    /// Whether `database` has events queued or losses to record.
    pub fn has(&self, database: u32) -> bool {
        self.has_losses(database) || self.entries.iter().any(|e| e.state == FILLED && e.database == database)
    }

    /// A database whose events wait in the queue with no worker to write them (none could be
    /// started when they were queued: no free worker slot here, or none in the postmaster).
    /// The oldest such event's database.
    /// The oldest such event's database, else a database with losses to record and no worker.
    pub fn orphaned(&mut self) -> Option<u32> {
        let unserved = |db: u32| !self.workers.iter().any(|w| w.state != NONE && w.database == db);
        let found = self
            .entries
            .iter()
            .filter(|e| e.state == FILLED)
            .filter(|e| unserved(e.database))
            .min_by_key(|e| e.seq)
            .map(|e| e.database)
            .or_else(|| self.losses.iter().find(|l| l.total > 0 && unserved(l.database)).map(|l| l.database));
        self.orphans = found.is_some();
        found
    }

    /// Every queued event, oldest first, and every database's losses, all taken out (what a
    /// clean shutdown saves for the next start).
    pub fn drain_all(&mut self) -> (Vec<Entry>, Vec<Losses>) {
        let mut all: Vec<Entry> = self.entries.iter().filter(|e| e.state == FILLED).copied().collect();
        all.sort_unstable_by_key(|e| e.seq);
        for e in self.entries.iter_mut() {
            e.state = FREE;
        }
        self.used = 0;
        let losses =
            self.losses.iter_mut().filter(|l| l.total > 0).map(|l| std::mem::replace(l, Losses::EMPTY)).collect();
        (all, losses)
    }

    /// Puts back events that were queued before (a writer's batch it could not write, what a
    /// shutdown saved): where there is room (the rest counted as lost), not counted in
    /// `pushed` again, and marked for [`Queue::orphaned`] in case no writer runs for them.
    pub fn requeue(&mut self, entries: &[Entry]) {
        let pushed = self.pushed;
        for e in entries {
            self.push(e);
        }
        self.pushed = pushed;
        self.orphans = true;
    }

    /// Puts back what [`Queue::drain_all`] took (at the next start): events where there is
    /// room (the rest counted as lost), losses added to their database's.
    pub fn restore(&mut self, entries: &[Entry], losses: &[Losses]) {
        self.requeue(entries);
        for l in losses {
            for (event, outcome, n) in l.kinds() {
                self.lose_kind(l.database, event as u8, outcome.map(|o| o as u8), n);
            }
        }
        self.orphans = true;
    }

    /// Whether [`Queue::orphaned`] may find something (a cheap test for every push).
    pub fn may_have_orphans(&self) -> bool {
        self.orphans
    }

    /// Events lost whose database could not be kept (see `lost`), since the last call.
    pub fn take_lost(&mut self) -> u64 {
        std::mem::take(&mut self.lost)
    }

    /// (events queued now, events queued since start, events lost and not yet recorded).
    pub fn usage(&self) -> (usize, u64, u64) {
        let kept: u64 = self.losses.iter().map(|l| u64::from(l.total)).sum();
        (self.used, self.pushed, self.lost + kept)
    }

    /// The pid of `database`'s running worker.
    pub fn worker_pid(&self, database: u32) -> Option<i32> {
        self.workers.iter().find(|w| w.database == database).and_then(WorkerSlot::pid)
    }

    pub fn workers(&self) -> impl Iterator<Item = &WorkerSlot> {
        self.workers.iter().filter(|w| w.state != NONE)
    }

    /// Whether `database` has a worker; if not, reserves a slot in STARTING state.
    pub fn start_worker(&mut self, database: u32, now_us: i64) -> Start {
        if let Some(w) = self.workers.iter_mut().find(|w| w.state != NONE && w.database == database) {
            // A start that never reported in, or a worker whose heartbeat stopped (it died
            // without freeing its slot): start another.
            if now_us - w.since_us > START_TIMEOUT_US {
                *w = WorkerSlot { database, state: STARTING, since_us: now_us, ..WorkerSlot::EMPTY };
                return Start::StartOne;
            }
            return Start::Running;
        }
        match self.workers.iter_mut().find(|w| w.state == NONE) {
            Some(w) => {
                *w = WorkerSlot { database, state: STARTING, since_us: now_us, ..WorkerSlot::EMPTY };
                Start::StartOne
            }
            None => {
                self.orphans = true;
                Start::NoSlot
            }
        }
    }

    /// The worker could not be registered: another push may try again.
    pub fn start_failed(&mut self, database: u32) {
        self.orphans = true;
        for w in self.workers.iter_mut().filter(|w| w.database == database && w.state == STARTING) {
            *w = WorkerSlot::EMPTY;
        }
    }

    /// A worker reports in. False: another worker already runs for the database (this one
    /// must exit at once).
    pub fn worker_started(&mut self, database: u32, pid: i32, now_us: i64) -> bool {
        if self.fallback_database == database {
            self.fallback_tries = 0;
        }
        if let Some(w) = self.workers.iter_mut().find(|w| w.state != NONE && w.database == database) {
            if w.state == RUNNING && w.pid != pid {
                return false;
            }
            *w = WorkerSlot { database, state: RUNNING, since_us: now_us, pid, ..WorkerSlot::EMPTY };
            return true;
        }
        match self.workers.iter_mut().find(|w| w.state == NONE) {
            Some(w) => {
                *w = WorkerSlot { database, state: RUNNING, since_us: now_us, pid, ..WorkerSlot::EMPTY };
                true
            }
            None => false,
        }
    }

    /// A running worker's heartbeat (at least every second). False: the slot is no longer
    /// this worker's (another was started in its place), so it must exit.
    pub fn heartbeat(&mut self, database: u32, pid: i32, now_us: i64) -> bool {
        match self.workers.iter_mut().find(|w| w.database == database && w.state == RUNNING && w.pid == pid) {
            Some(w) => {
                w.since_us = now_us;
                true
            }
            None => false,
        }
    }

    /// The worker of `database` wants to stop: allowed (its slot freed) only when no event of
    /// the database is queued. With `force` (shutdown, or the extension is gone) the slot is
    /// freed whatever is queued.
    pub fn worker_exit(&mut self, database: u32, pid: i32, force: bool) -> bool {
        if !force && self.has(database) {
            return false;
        }
        for w in self.workers.iter_mut().filter(|w| w.database == database && w.pid == pid && w.state == RUNNING) {
            *w = WorkerSlot::EMPTY;
        }
        true
    }

    /// Drops every queued event of `database` (the extension is not installed there any more).
    pub fn discard(&mut self, database: u32) -> usize {
        self.take_losses(database);
        let mut n = 0;
        for e in self.entries.iter_mut().filter(|e| e.state == FILLED && e.database == database) {
            e.state = FREE;
            n += 1;
        }
        self.used -= n;
        n
    }
}
