//! The audit trail (auth.mfa_audit_log): the pgrx shell around [`mfa_auth_core::audit`].
//!
//! Two kinds of events, two paths:
//! - [`now`]: failures and refusals. They must survive the caller's ROLLBACK (an attacker who
//!   wraps guesses in `BEGIN … ROLLBACK` must show in the trail, as the attempt limits count
//!   them), so they go at once into a queue in shared memory, outside any transaction;
//! - [`at_commit`]: everything that changes data (enrollments, successes, unenrolls, …).
//!   They are true only if the caller's transaction commits, so they wait in this backend's
//!   memory and reach the queue in the commit callback (a rolled-back transaction, or a
//!   rolled-back subtransaction, drops its own).
//!
//! A background worker per database (started on demand by the backend that queues an event,
//! stopping after [`IDLE_EXIT`] without work) takes the queue's events of its database in
//! batches and inserts them in one transaction. Without the library preloaded there is no
//! shared memory: each event is inserted in the caller's own transaction instead (so a
//! rolled-back failure is lost with it, as its attempt count is; docs/security.md).
//!
//! What a crash loses: the events still in the queue (written within [`POLL`] of their
//! queueing, so at most the last ~100 ms of events, or more if the writer fell behind),
//! because shared memory does not survive a server crash. A full queue counts the events it
//! has no room for and the writer records their number (`audit_events_lost`).

use std::cell::RefCell;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use pgrx::bgworkers::{BackgroundWorker, BackgroundWorkerBuilder, BgWorkerStartTime, SignalWakeFlags};
use pgrx::datum::DatumWithOid;
use pgrx::prelude::*;
use pgrx::{pg_shmem_init, PGRXSharedMemory, PgLwLock};

use crate::pg::error::{raise, MfaError, OrRaise};
pub use mfa_auth_core::audit::{Count, Entry, Event, Outcome, Traits};
use mfa_auth_core::audit::{Queue, Start};

mod insert;
mod saved;
mod writer;
pub use insert::SIGN_OUT_SQL;
use insert::*;
use saved::*;
use writer::*;

/// Events the shared queue holds (× 360 bytes, about 370 kB of shared memory). pgrx builds the
/// initial value on the postmaster's stack, several copies deep: a queue of megabytes there
/// overflows it (seen: 8192 slots, a segmentation fault at server start). A writer is woken
/// as soon as a quarter is used, so this holds the bursts between two of its rounds.
pub const CAPACITY: usize = 1024;
/// How often a writer looks for events.
const POLL: Duration = Duration::from_millis(100);
/// How long a writer waits before it writes a batch again whose write failed.
const RETRY: Duration = Duration::from_millis(500);
/// Events a writer inserts per transaction.
const BATCH: usize = 1000;
/// A writer without work for this long stops (so DROP DATABASE does not wait on it).
const IDLE_EXIT: Duration = Duration::from_secs(2);
/// How often a writer deletes rows older than mfa_auth.audit_retention.
const RETENTION_EVERY: Duration = Duration::from_secs(60);

#[repr(transparent)]
pub struct Shared(Queue<CAPACITY>);

// SAFETY: fixed-size integers and byte arrays, no pointers: valid in any process.
unsafe impl PGRXSharedMemory for Shared {}

static QUEUE: PgLwLock<Shared> = unsafe { PgLwLock::new(c"mfa_auth_audit") };

/// Set in the postmaster when preloading; inherited by every backend it forks.
static SHARED: AtomicBool = AtomicBool::new(false);

/// Events over [`PENDING_CAP`] of one kind: (subtransaction, database, event, outcome, how many).
type Overflow = (pg_sys::SubTransactionId, u32, u8, Option<u8>, u32);

thread_local! {
    /// This transaction's events that wait for its commit, with the subtransaction that made each.
    static PENDING: RefCell<Vec<(pg_sys::SubTransactionId, Entry)>> = const { RefCell::new(Vec::new()) };
    /// Events over [`PENDING_CAP`]: counted by subtransaction, database, kind and outcome,
    /// and recorded as lost if the transaction commits.
    static OVERFLOW: RefCell<Vec<Overflow>> = const { RefCell::new(Vec::new()) };
}

/// Events one transaction holds for its commit (× 360 bytes: about 370 kB at most). One
/// transaction that makes more (a loop of 10 000 enrollments) has the rest counted, by kind,
/// and recorded as `audit_events_lost` in its database when it commits: its memory stays
/// bounded, and it cannot fill the shared queue by itself at commit beyond this.
pub const PENDING_CAP: usize = CAPACITY;

static mut PREV_SHMEM_STARTUP: pg_sys::shmem_startup_hook_type = None;

/// Called from _PG_init: the shared queue when preloading; the transaction callbacks always.
pub fn init() {
    if unsafe { pg_sys::process_shared_preload_libraries_in_progress } {
        pg_shmem_init!(QUEUE = Shared(Queue::new()));
        SHARED.store(true, Ordering::Relaxed);
        // After pgrx's hook (which makes the queue): what the last clean shutdown saved.
        // SAFETY: _PG_init in the postmaster, before shared memory exists.
        unsafe {
            PREV_SHMEM_STARTUP = pg_sys::shmem_startup_hook;
            pg_sys::shmem_startup_hook = Some(on_shmem_startup);
        }
        // The reserved writer: a slot of max_worker_processes held from the server's start,
        // so the trail is written even while every other slot is taken (by parallel query,
        // say, which any role can make); it also starts writers for events that have none.
        BackgroundWorkerBuilder::new("mfa_auth audit launcher")
            .set_type("mfa_auth audit launcher")
            .set_library("mfa_auth")
            .set_function("mfa_auth_audit_launcher")
            .enable_spi_access()
            .set_start_time(BgWorkerStartTime::RecoveryFinished)
            .set_restart_time(Some(LAUNCHER_RESTART))
            .load();
    }
    unsafe extern "C-unwind" fn on_xact(event: pg_sys::XactEvent::Type, _arg: *mut core::ffi::c_void) {
        use pg_sys::XactEvent::*;
        match event {
            XACT_EVENT_COMMIT | XACT_EVENT_PARALLEL_COMMIT => crate::pg::guard::hook_body((), flush_pending),
            // A prepared transaction may still be rolled back (ROLLBACK PREPARED), perhaps
            // from another session, long after: its events are inserted into the trail inside
            // it, so they commit, or vanish, with it.
            XACT_EVENT_PRE_PREPARE => pre_prepare(),
            XACT_EVENT_ABORT | XACT_EVENT_PARALLEL_ABORT | XACT_EVENT_PREPARE => {
                crate::pg::guard::hook_body((), clear_pending)
            }
            _ => {}
        }
    }
    unsafe extern "C-unwind" fn on_subxact(
        event: pg_sys::SubXactEvent::Type,
        my: pg_sys::SubTransactionId,
        _parent: pg_sys::SubTransactionId,
        _arg: *mut core::ffi::c_void,
    ) {
        if event == pg_sys::SubXactEvent::SUBXACT_EVENT_ABORT_SUB {
            // Subtransaction ids grow: this one's events and its children's are >= my.
            crate::pg::guard::hook_body((), || {
                PENDING.with(|p| p.borrow_mut().retain(|(s, _)| *s < my));
                OVERFLOW.with(|o| o.borrow_mut().retain(|(s, ..)| *s < my));
            });
        }
    }
    // SAFETY: registered once per backend; the callbacks take an LWLock at most.
    unsafe {
        pg_sys::RegisterXactCallback(Some(on_xact), std::ptr::null_mut());
        pg_sys::RegisterSubXactCallback(Some(on_subxact), std::ptr::null_mut());
    }
}

pub fn bytes(u: pgrx::Uuid) -> [u8; 16] {
    *u.as_bytes()
}

/// A new event of this database, now, by the caller's role.
pub fn event(event: Event) -> Entry {
    // SAFETY: a plain read of a backend global.
    let db = unsafe { pg_sys::MyDatabaseId }.to_u32();
    Entry::new(event, db, crate::pg::clock::now_us(), *crate::pg::ids::uuid_v7().as_bytes())
        .role(&crate::session::caller_role())
}

/// The usual fields of an event about one factor.
pub fn factor_event(
    event: Event,
    user: pgrx::Uuid,
    factor: pgrx::Uuid,
    factor_type: mfa_auth_core::factor_type::FactorType,
) -> Entry {
    self::event(event).user(Some(bytes(user))).factor(Some(bytes(factor))).factor_type(factor_type.sql_name())
}

pub trait EntryExt {
    fn session_id(self, s: Option<pgrx::Uuid>) -> Entry;
    fn inet(self, ip: &Option<pgrx::Inet>) -> Entry;
}

impl EntryExt for Entry {
    fn session_id(self, s: Option<pgrx::Uuid>) -> Entry {
        self.session(s.map(bytes))
    }
    fn inet(self, ip: &Option<pgrx::Inet>) -> Entry {
        self.ip(ip.as_ref().map(|i| i.0.as_str()))
    }
}

fn enabled() -> bool {
    crate::settings::audit()
}

/// Records `e` whatever happens to the caller's transaction (failures, refusals).
pub fn now(e: Entry) {
    if !enabled() {
        return;
    }
    if SHARED.load(Ordering::Relaxed) {
        push(e.database, std::slice::from_ref(&e));
    } else {
        insert_here(std::slice::from_ref(&e));
    }
}

/// Records failure `e` as [`now`] does, and has the writer write its count `c` into the row
/// that counts its factor's failures, in the transaction that writes the event (with
/// mfa_auth.audit off, the count alone): a failure that the caller's transaction rolled back
/// then reaches the table, and the standby, as the shared-memory count does not. The caller's
/// own failure statement writes the same count too; whichever is newer stays (see
/// [`COUNT_SQL`]). Without the library preloaded there is no writer, and no count that
/// survives a rollback: [`now`].
pub fn now_counting(e: Entry, c: Count) {
    if !SHARED.load(Ordering::Relaxed) {
        return now(e);
    }
    let e = e.counting(c);
    let e = if enabled() { e } else { e.without_row() };
    push(e.database, std::slice::from_ref(&e));
}

/// How long a rejecting call waits for the writer to commit its sign-out.
const SIGN_OUT_WAIT: Duration = Duration::from_secs(5);

/// Records `e` (a hook's rejection) whatever the caller's transaction does, as [`now`] does,
/// and signs its user out: the writer removes the claims of every session of theirs (and of
/// `e`'s session) in the transaction that writes the event, and this waits, up to
/// [`SIGN_OUT_WAIT`], until that transaction has committed, so the caller's error comes after
/// the sign-out. With mfa_auth.audit off there is no row, only the sign-out. False: not
/// committed yet (the queue was full, or the writer was slower than the wait; it goes on).
///
/// Without the library preloaded there is no writer: the sign-out is done in the caller's
/// transaction, which the caller's error then rolls back (docs/security.md).
pub fn now_signing_out(e: Entry) -> bool {
    let e = e.signing_out(enabled());
    if !SHARED.load(Ordering::Relaxed) {
        insert_here(std::slice::from_ref(&e));
        return false;
    }
    let db = e.database;
    let (seq, start, pid) = {
        let mut q = QUEUE.exclusive();
        let seq = q.0.push_seq(&e);
        (seq, q.0.start_worker(db, crate::pg::clock::now_us()), q.0.worker_pid(db))
    };
    if let Some(pid) = pid {
        wake(pid);
    }
    if start == Start::StartOne {
        register_writer(db);
    }
    let Some(seq) = seq else { return false };
    let until = std::time::Instant::now() + SIGN_OUT_WAIT;
    while std::time::Instant::now() < until {
        if QUEUE.share().0.is_written(db, seq) {
            return true;
        }
        // SAFETY: a plain sleep; interrupts (a cancel, statement_timeout) are served below.
        unsafe { pg_sys::pg_usleep(2_000) };
        pgrx::check_for_interrupts!();
    }
    false
}

/// Sets the latch of process `pid` (a writer) so it looks at the queue now.
fn wake(pid: i32) {
    // SAFETY: BackendPidGetProc takes ProcArrayLock and returns NULL for a pid that is gone;
    // SetLatch on a live process's latch is what Postgres itself does to wake one.
    unsafe {
        let proc_ = pg_sys::BackendPidGetProc(pid);
        if !proc_.is_null() {
            pg_sys::SetLatch(&raw mut (*proc_).procLatch);
        }
    }
}

/// Records `e` if and when the caller's transaction commits.
pub fn at_commit(e: Entry) {
    if !enabled() {
        return;
    }
    if SHARED.load(Ordering::Relaxed) {
        // SAFETY: a plain read of transaction state.
        let sub = unsafe { pg_sys::GetCurrentSubTransactionId() };
        let kept = PENDING.with(|p| {
            let mut p = p.borrow_mut();
            (p.len() < PENDING_CAP).then(|| p.push((sub, e))).is_some()
        });
        if !kept {
            let (db, ev, outcome) =
                (e.database, e.event().map_or(u8::MAX, |v| v as u8), e.outcome_of().map(|o| o as u8));
            OVERFLOW.with(|o| {
                let mut o = o.borrow_mut();
                match o.iter_mut().find(|(s, d, v, oc, _)| *s == sub && *d == db && *v == ev && *oc == outcome) {
                    Some(entry) => entry.4 += 1,
                    None => o.push((sub, db, ev, outcome, 1)),
                }
            });
        }
    } else {
        insert_here(std::slice::from_ref(&e));
    }
}

fn clear_pending() {
    PENDING.with(|p| p.borrow_mut().clear());
    OVERFLOW.with(|o| o.borrow_mut().clear());
}

fn flush_pending() {
    let events: Vec<Entry> = PENDING.with(|p| p.borrow_mut().drain(..).map(|(_, e)| e).collect());
    let overflow: Vec<_> = OVERFLOW.with(|o| o.borrow_mut().drain(..).collect());
    if !overflow.is_empty() {
        let mut q = QUEUE.exclusive();
        for (_, db, ev, outcome, n) in &overflow {
            q.0.lose_kind(*db, *ev, *outcome, *n);
        }
    }
    if let Some(db) = events.first().map(|e| e.database).or(overflow.first().map(|o| o.1)) {
        // (With only losses to record, their writer must run all the same.)
        push(db, &events);
    }
}

/// The PRE_PREPARE callback's body: an error in it is a Postgres ERROR (the PREPARE fails).
#[pg_guard]
unsafe extern "C-unwind" fn pre_prepare() {
    insert_pending_in_transaction();
}

/// At PREPARE TRANSACTION (XACT_EVENT_PRE_PREPARE, while the transaction can still run
/// statements): the events it holds for its commit are inserted into auth.mfa_audit_log in
/// the transaction itself, as the table's owner, and the losses over [`PENDING_CAP`] as
/// `audit_events_lost` rows. COMMIT PREPARED makes them visible, ROLLBACK PREPARED removes
/// them: rows only for what happened. An error here fails the PREPARE (the transaction rolls
/// back), as any other error at that point would.
fn insert_pending_in_transaction() {
    let mut events: Vec<Entry> = PENDING.with(|p| p.borrow_mut().drain(..).map(|(_, e)| e).collect());
    let overflow: Vec<_> = OVERFLOW.with(|o| o.borrow_mut().drain(..).collect());
    // SAFETY: a plain read of a backend global.
    let db = unsafe { pg_sys::MyDatabaseId }.to_u32();
    if !overflow.is_empty() {
        let mut l = mfa_auth_core::audit::Losses::default();
        for (_, _, ev, outcome, n) in &overflow {
            l.count(*ev, *outcome, *n);
        }
        events.extend(loss_events(db, Some(l), 0));
    }
    if events.is_empty() {
        return;
    }
    // The transaction's statements are over: SPI needs a snapshot of its own here (an error
    // below aborts the transaction, which pops it).
    // SAFETY: the transaction is in progress (PRE_PREPARE comes before its state changes).
    unsafe { pg_sys::PushActiveSnapshot(pg_sys::GetTransactionSnapshot()) };
    insert_here(&events);
    unsafe { pg_sys::PopActiveSnapshot() };
}

/// Queues events of database `db` and makes sure a writer runs for it. Cannot raise.
fn push(db: u32, events: &[Entry]) {
    let (start, wake, orphans) = {
        let mut q = QUEUE.exclusive();
        for e in events {
            q.0.push(e);
        }
        let wake = if q.0.usage().0 >= CAPACITY / 4 { q.0.worker_pid(db) } else { None };
        (q.0.start_worker(db, crate::pg::clock::now_us()), wake, q.0.may_have_orphans())
    };
    if let Some(pid) = wake {
        self::wake(pid);
    }
    if start == Start::StartOne {
        register_writer(db);
    }
    if orphans {
        adopt_orphans();
    }
}

/// Deletes audit rows older than `older_than` (default: mfa_auth.audit_retention; nothing when
/// that is 0), at most `batch_size` of them, along the created_at index (cost O(deleted));
/// returns how many.
pub fn cleanup(older_than: Option<Interval>, batch: i32) -> i64 {
    if !(1..=1_000_000).contains(&batch) {
        raise(MfaError::invalid("batch_size", "must be between 1 and 1000000"));
    }
    // Without an argument the setting decides, and mfa_auth.audit_retention = 0 keeps every row.
    let older_than = match older_than {
        Some(i) => i,
        None if crate::settings::audit_retention() == 0 => return 0,
        None => Interval::from_seconds(f64::from(crate::settings::audit_retention())),
    };
    if older_than.as_micros() < 0 {
        raise(MfaError::invalid("older_than", "must not be negative"));
    }
    let deleted = Spi::connect_mut(|client| {
        crate::pg::schema::check_schema(client);
        delete_older(client, older_than, batch)
    });
    at_commit(event(Event::Cleanup).traits(&Traits::new().int("audit_rows", deleted)));
    deleted
}

/// How the audit trail runs: whether failures survive ROLLBACK (the library is preloaded),
/// the shared queue's capacity, events queued now, queued since the server started, lost
/// (no room) and not yet recorded, and the writers running.
pub fn status() -> (bool, i32, i32, i64, i64, i32) {
    let shared = SHARED.load(Ordering::Relaxed);
    let (queued, total, lost, writers) = if shared {
        let q = QUEUE.share();
        let (u, t, l) = q.0.usage();
        (u as i32, t as i64, l as i64, q.0.workers().filter(|w| w.pid().is_some()).count() as i32)
    } else {
        (0, 0, 0, 0)
    };
    (shared, if shared { CAPACITY as i32 } else { 0 }, queued, total, lost, writers)
}
