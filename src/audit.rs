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
pub use mfa_auth_core::audit::{Entry, Event, Outcome, Traits};
use mfa_auth_core::audit::{Queue, Start};

/// Events the shared queue holds (× 344 bytes, about 350 kB of shared memory). pgrx builds the
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

/// Events one transaction holds for its commit (× 344 bytes: about 350 kB at most). One
/// transaction that makes more (a loop of 10 000 enrollments) has the rest counted, by kind,
/// and recorded as `audit_events_lost` in its database when it commits: its memory stays
/// bounded, and it cannot fill the shared queue by itself at commit beyond this.
pub const PENDING_CAP: usize = CAPACITY;

static mut PREV_SHMEM_STARTUP: pg_sys::shmem_startup_hook_type = None;

/// Where a clean shutdown saves the events still queued (in the data directory; read and
/// removed at the next start).
const SAVED_FILE: &str = "mfa_auth_audit.queue";

fn saved_path() -> Option<std::path::PathBuf> {
    // SAFETY: DataDir is set in the postmaster before shared memory is made.
    let dir = unsafe { pg_sys::DataDir };
    if dir.is_null() {
        return None;
    }
    let dir = unsafe { core::ffi::CStr::from_ptr(dir) }.to_str().ok()?;
    Some(std::path::Path::new(dir).join(SAVED_FILE))
}

#[pg_guard]
unsafe extern "C-unwind" fn on_shmem_startup() {
    if let Some(prev) = PREV_SHMEM_STARTUP {
        pg_sys::submodules::ffi::pg_guard_ffi_boundary(|| prev());
    }
    // In the postmaster (at start, and again after a crash made shared memory anew).
    if !pg_sys::IsUnderPostmaster {
        restore_saved();
        pg_sys::on_shmem_exit(Some(save_at_exit), pg_sys::Datum::from(0usize));
    }
}

/// The postmaster puts back what the last clean shutdown saved; the reserved writer (or the
/// next event) starts writers for it.
fn restore_saved() {
    let Some(path) = saved_path() else { return };
    let Ok(bytes) = std::fs::read(&path) else { return };
    let _ = std::fs::remove_file(&path);
    match mfa_auth_core::audit::decode_saved(&bytes) {
        Some((entries, losses)) => {
            QUEUE.exclusive().0.restore(&entries, &losses);
            let lost: u32 = losses.iter().map(|l| l.total()).sum();
            log!(
                "mfa_auth: {} audit events and {lost} counted losses saved at the last shutdown are queued again",
                entries.len()
            );
        }
        None => warning!("mfa_auth: {} is not a saved audit queue of this version: not used", path.display()),
    }
}

/// At the postmaster's exit after a clean shutdown (every other process is gone): the events
/// no writer could write (none running for their database, or its write failed) are saved
/// for the next start instead of being lost. After a crash (code != 0) nothing is saved:
/// shared memory may be inconsistent (docs: what a crash loses).
unsafe extern "C-unwind" fn save_at_exit(code: core::ffi::c_int, _arg: pg_sys::Datum) {
    if code != 0 {
        return;
    }
    crate::pg::guard::hook_body((), || {
        let (entries, losses) = QUEUE.exclusive().0.drain_all();
        if entries.is_empty() && losses.is_empty() {
            return;
        }
        let Some(path) = saved_path() else { return };
        let tmp = path.with_extension("queue.tmp");
        let bytes = mfa_auth_core::audit::encode_saved(&entries, &losses);
        let written = std::fs::write(&tmp, bytes).and_then(|_| std::fs::rename(&tmp, &path));
        match written {
            Ok(()) => {
                log!("mfa_auth: {} queued audit events saved for the next start in {}", entries.len(), path.display())
            }
            Err(e) => warning!("mfa_auth: {} queued audit events could not be saved ({e}): lost", entries.len()),
        }
    });
}

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
        // SAFETY: BackendPidGetProc takes ProcArrayLock and returns NULL for a pid that is gone;
        // SetLatch on a live process's latch is what Postgres itself does to wake one.
        unsafe {
            let proc_ = pg_sys::BackendPidGetProc(pid);
            if !proc_.is_null() {
                pg_sys::SetLatch(&raw mut (*proc_).procLatch);
            }
        }
    }
    if start == Start::StartOne {
        register_writer(db);
    }
    if orphans {
        adopt_orphans();
    }
}

/// Asks the postmaster for a writer of database `db` (its slot in the queue is reserved);
/// false when no worker slot is free (the reservation stays: the caller serves it).
fn try_register_writer(db: u32) -> bool {
    BackgroundWorkerBuilder::new("mfa_auth audit writer")
        .set_type("mfa_auth audit writer")
        .set_library("mfa_auth")
        .set_function("mfa_auth_audit_worker")
        .set_argument(Some(pg_sys::Datum::from(db)))
        .enable_spi_access()
        .set_start_time(BgWorkerStartTime::RecoveryFinished)
        .set_restart_time(None)
        .load_dynamic()
        .is_ok()
}

/// Asks the postmaster for a writer of database `db` (its slot in the queue is reserved).
fn register_writer(db: u32) {
    if !try_register_writer(db) {
        // No free worker slot now (max_worker_processes): the events wait; the reserved
        // writer serves them within LAUNCHER_POLL (or the next event, or the next round of
        // any running writer, finds a slot).
        QUEUE.exclusive().0.start_failed(db);
    }
}

/// A database with queued events and no writer, marked as starting one (the caller starts it).
fn claim_orphan() -> Option<u32> {
    let mut q = QUEUE.exclusive();
    match q.0.orphaned() {
        Some(db) if q.0.start_worker(db, crate::pg::clock::now_us()) == Start::StartOne => Some(db),
        _ => None,
    }
}

/// Events of a database whose writer could not be started when they were queued (no free
/// worker slot) get one now: tried by every push while such events may exist, and by every
/// idle round of a running writer.
fn adopt_orphans() {
    if let Some(db) = claim_orphan() {
        register_writer(db);
    }
}

/// One INSERT for a batch, parameters as arrays (one element per event).
const INSERT_SQL: &str = "INSERT INTO auth.mfa_audit_log
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

fn uuid(b: Option<[u8; 16]>) -> Option<pgrx::Uuid> {
    b.map(pgrx::Uuid::from_bytes)
}

/// Inserts `events` (in the current transaction) and, with mfa_auth.audit_log_server, writes
/// each to the server log.
fn write(client: &mut pgrx::spi::SpiClient<'_>, events: &[Entry]) {
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
fn insert_here(events: &[Entry]) {
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
fn in_transaction(what: &str, f: impl FnOnce()) -> bool {
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

const RETENTION_SQL: &str = "WITH old AS (
         SELECT l.id FROM auth.mfa_audit_log l
          WHERE l.created_at OPERATOR(pg_catalog.<) (pg_catalog.clock_timestamp() OPERATOR(pg_catalog.-) $1)
          ORDER BY l.created_at LIMIT $2
     )
     DELETE FROM auth.mfa_audit_log d USING old WHERE d.id OPERATOR(pg_catalog.=) old.id";

/// Deletes up to `batch` rows older than `older_than` along the created_at index; returns
/// how many.
fn delete_older(client: &mut pgrx::spi::SpiClient<'_>, older_than: Interval, batch: i32) -> i64 {
    let args: [DatumWithOid; 2] = [older_than.into(), i64::from(batch).into()];
    client.update(RETENTION_SQL, None, &args).or_raise().len() as i64
}

/// How soon the postmaster starts the reserved writer again after it served a database (a
/// process connects to one database in its life).
const LAUNCHER_RESTART: Duration = Duration::from_secs(1);
/// How often the reserved writer looks for events without a writer.
const LAUNCHER_POLL: Duration = Duration::from_millis(500);
/// Tries in a row to serve a database that never connected (it was dropped) before its
/// events are discarded.
const FALLBACK_TRIES: u32 = 3;

/// The reserved writer (a static background worker, started with the server): every
/// [`LAUNCHER_POLL`] it starts a writer for events that have none; when no worker slot is
/// free for one, it writes them itself, in its own slot, then exits to be started again
/// (code 1, after [`LAUNCHER_RESTART`]) free to serve another database.
#[pg_guard]
#[no_mangle]
pub extern "C-unwind" fn mfa_auth_audit_launcher(_arg: pg_sys::Datum) {
    BackgroundWorker::attach_signal_handlers(SignalWakeFlags::SIGHUP | SignalWakeFlags::SIGTERM);
    loop {
        if unsafe { pg_sys::ShutdownRequestPending != 0 } {
            return;
        }
        if let Some(db) = claim_orphan() {
            if !try_register_writer(db) {
                let tries = QUEUE.exclusive().0.fallback_try(db);
                if tries > FALLBACK_TRIES {
                    let n = {
                        let mut q = QUEUE.exclusive();
                        q.0.start_failed(db);
                        q.0.discard(db)
                    };
                    warning!("mfa_auth audit launcher: database {db} cannot be connected to (dropped?): its {n} queued audit events are discarded");
                    continue;
                }
                serve(db);
                // SAFETY: ends this process; the postmaster starts it again.
                unsafe { pg_sys::proc_exit(1) };
            }
        }
        wait(LAUNCHER_POLL);
    }
}

/// The audit writer of one database (a dynamic background worker; its argument is the
/// database's OID).
#[pg_guard]
#[no_mangle]
pub extern "C-unwind" fn mfa_auth_audit_worker(arg: pg_sys::Datum) {
    BackgroundWorker::attach_signal_handlers(SignalWakeFlags::SIGHUP | SignalWakeFlags::SIGTERM);
    serve(arg.value() as u32);
}

/// Writes database `db`'s events until it has none for [`IDLE_EXIT`] (or the server stops).
fn serve(db: u32) {
    BackgroundWorker::connect_worker_to_spi_by_oid(Some(pg_sys::Oid::from(db)), None);
    // SAFETY: a plain read of a backend global.
    let pid = unsafe { pg_sys::MyProcPid };
    if !QUEUE.exclusive().0.worker_started(db, pid, crate::pg::clock::now_us()) {
        return; // another writer runs for this database
    }
    // The extension may have been dropped (or not updated to 0.3.0) since the events were queued.
    // The trail's owner: the writer connects as the bootstrap superuser (a background worker
    // needs a role at connect time, before it can read the catalogs) and runs every statement
    // after this check as the owner, with that role's rights alone.
    let mut owner = None;
    in_transaction("the installation check", || {
        own_environment();
        owner = Spi::get_one::<pg_sys::Oid>(
            "SELECT c.relowner FROM pg_catalog.pg_class c
              WHERE c.oid OPERATOR(pg_catalog.=) pg_catalog.to_regclass('auth.mfa_audit_log')
                AND EXISTS (SELECT FROM pg_catalog.pg_extension WHERE extname OPERATOR(pg_catalog.=) 'mfa_auth')",
        )
        .ok()
        .flatten();
        if owner.is_some() {
            Spi::connect(crate::pg::schema::check_schema);
        }
    });
    let Some(owner) = owner else {
        let mut q = QUEUE.exclusive();
        q.0.discard(db);
        q.0.worker_exit(db, pid, true);
        return;
    };
    let mut idle = Duration::ZERO;
    let mut since_retention = RETENTION_EVERY;
    let mut batch = Vec::with_capacity(BATCH);
    loop {
        // SAFETY: flags the signal handlers set (pgrx's handlers set Postgres's own).
        unsafe {
            if pg_sys::ConfigReloadPending != 0 {
                pg_sys::ConfigReloadPending = 0;
                pg_sys::ProcessConfigFile(pg_sys::GucContext::PGC_SIGHUP);
            }
        }
        let shutdown = unsafe { pg_sys::ShutdownRequestPending != 0 };
        // A batch whose write failed is written again first (kept, never dropped): nothing
        // new is taken meanwhile, so the queue holds the rest, and what finds no room there is
        // counted as lost in its database.
        let retrying = !batch.is_empty();
        let (losses, lost) = {
            let mut q = QUEUE.exclusive();
            if !q.0.heartbeat(db, pid, crate::pg::clock::now_us()) {
                // Replaced by another writer: a batch not written goes back to the queue.
                q.0.requeue(&batch);
                return;
            }
            if retrying {
                (None, 0)
            } else {
                q.0.take(db, BATCH, &mut batch);
                (q.0.take_losses(db), q.0.take_lost())
            }
        };
        batch.extend(loss_events(db, losses, lost));
        if !batch.is_empty() {
            idle = Duration::ZERO;
            let n = batch.len();
            if in_transaction("writing events", || {
                crate::session::as_owner(owner, || Spi::connect_mut(|client| write(client, &batch)))
            }) {
                if retrying {
                    log!("mfa_auth audit writer: {n} events of database {db} written after a failed attempt");
                }
                batch.clear();
            } else if shutdown || unsafe { pg_sys::ShutdownRequestPending != 0 } {
                // Back to the queue: the postmaster saves it at the end of a clean shutdown.
                QUEUE.exclusive().0.requeue(&batch);
                batch.clear();
            } else {
                warning!("mfa_auth audit writer: {n} events of database {db} not written yet; trying again");
                wait(RETRY);
                continue;
            }
            if n >= BATCH && !shutdown {
                continue; // more may be waiting
            }
        }
        if batch.is_empty() {
            adopt_orphans();
        }
        if since_retention >= RETENTION_EVERY {
            since_retention = Duration::ZERO;
            let keep = crate::settings::audit_retention();
            if keep > 0 {
                in_transaction("the retention cleanup", || {
                    crate::session::as_owner(owner, || {
                        let deleted = Spi::connect_mut(|client| {
                            delete_older(client, Interval::from_seconds(f64::from(keep)), 10_000)
                        });
                        if deleted > 0 {
                            let e = event_of_worker(Event::Cleanup, db)
                                .traits(&Traits::new().int("audit_rows", deleted).label("by", "audit_retention"));
                            Spi::connect_mut(|client| write(client, std::slice::from_ref(&e)));
                        }
                    })
                });
            }
        }
        if shutdown {
            QUEUE.exclusive().0.worker_exit(db, pid, true);
            return;
        }
        if idle >= IDLE_EXIT && QUEUE.exclusive().0.worker_exit(db, pid, false) {
            return;
        }
        wait(POLL);
        // A SIGTERM sets ShutdownRequestPending: the next round writes what is queued and exits.
        idle += POLL;
        since_retention += POLL;
    }
}

/// The writer's own settings, whatever the database's say. The writer connects as the
/// bootstrap superuser, and InitPostgres applies `ALTER DATABASE ... SET` values to it: the
/// database's owner, who is not a superuser, could otherwise run it as their own role (no
/// right to write the trail), read-only, under tiny timeouts, or with a search_path that
/// resolves its statements' names to the owner's objects (code run as a superuser). Set with
/// the highest source (PGC_S_OVERRIDE), so a reload of the configuration files keeps them.
const WRITER_SETTINGS: &[(&core::ffi::CStr, &core::ffi::CStr)] = &[
    (c"search_path", crate::pg::schema::SEARCH_PATH),
    (c"role", c"none"),
    (c"default_transaction_read_only", c"off"),
    (c"default_transaction_isolation", c"read committed"),
    (c"default_transaction_deferrable", c"off"),
    // Bounded, so a writer blocked by a lock on the trail (LOCK TABLE, a prepared transaction
    // holding one) gives up its batch at a shutdown instead of holding the shutdown up: the
    // batch is kept and written again, or saved at the shutdown.
    (c"statement_timeout", c"60s"),
    (c"lock_timeout", c"5s"),
    (c"idle_in_transaction_session_timeout", c"0"),
    (c"transaction_timeout", c"0"),
    (c"session_replication_role", c"origin"),
    (c"row_security", c"on"),
];

fn set_option(name: &core::ffi::CStr, value: &core::ffi::CStr) {
    // SAFETY: a known (or checked) parameter and a NUL-terminated value; a value it refuses is
    // reported as a WARNING (elevel), not raised.
    unsafe {
        if pg_sys::GetConfigOption(name.as_ptr(), true, false).is_null() {
            return; // not a parameter of this major (transaction_timeout before 17)
        }
        pg_sys::set_config_option(
            name.as_ptr(),
            value.as_ptr(),
            pg_sys::GucContext::PGC_SUSET,
            pg_sys::GucSource::PGC_S_OVERRIDE,
            pg_sys::GucAction::GUC_ACTION_SET,
            true,
            pg_sys::WARNING as i32,
            false,
        );
    }
}

/// Every parameter an ordinary role may set (context `user`) that reached this process from
/// `ALTER DATABASE ... SET` or `ALTER ROLE ... SET`, with the value the configuration files
/// give it (pg_file_settings), or its built-in default. Parameters only a superuser may set
/// per database (mfa_auth.audit_retention, ...) keep their database value: a superuser set it.
const DATABASE_SETTINGS_SQL: &str = "SELECT s.name, COALESCE(
        (SELECT f.setting FROM pg_catalog.pg_file_settings f
          WHERE pg_catalog.lower(f.name) OPERATOR(pg_catalog.=) pg_catalog.lower(s.name) AND f.applied
          ORDER BY f.seqno DESC LIMIT 1),
        s.boot_val)
   FROM pg_catalog.pg_settings s
  WHERE s.source OPERATOR(pg_catalog.=) ANY ('{database,user,\"database user\"}'::pg_catalog.text[])
    AND s.context OPERATOR(pg_catalog.=) 'user'";

/// Gives the writer [`WRITER_SETTINGS`] and undoes the database's settings of every other
/// parameter an ordinary role may set, before it runs any statement. Inside the writer's first
/// transaction (which may be read-only by the database's default: it only reads).
fn own_environment() {
    for (name, value) in WRITER_SETTINGS {
        set_option(name, value);
    }
    let undone: Vec<(String, String)> = Spi::connect(|client| {
        client
            .select(DATABASE_SETTINGS_SQL, None, &[])
            .or_raise()
            .filter_map(|row| Some((row.get::<String>(1).ok()??, row.get::<String>(2).ok()??)))
            .collect()
    });
    for (name, value) in &undone {
        if let (Ok(n), Ok(v)) = (std::ffi::CString::new(name.as_str()), std::ffi::CString::new(value.as_str())) {
            set_option(&n, &v);
        }
    }
    // Again: the loop above may have reset one of them to its file value.
    for (name, value) in WRITER_SETTINGS {
        set_option(name, value);
    }
    if !undone.is_empty() {
        let names: Vec<&str> = undone.iter().map(|(n, _)| n.as_str()).collect();
        debug1!("mfa_auth audit writer: not using the database's settings of {}", names.join(", "));
    }
}

/// Waits on the process's latch for at most `d` (a queue nearly full, or a signal, sets it).
fn wait(d: Duration) {
    // SAFETY: the worker's own latch; on postmaster death the process exits.
    unsafe {
        pg_sys::WaitLatch(
            pg_sys::MyLatch,
            (pg_sys::WL_LATCH_SET | pg_sys::WL_TIMEOUT | pg_sys::WL_EXIT_ON_PM_DEATH) as i32,
            d.as_millis() as _,
            pg_sys::PG_WAIT_EXTENSION,
        );
        pg_sys::ResetLatch(pg_sys::MyLatch);
    }
}

/// One `audit_events_lost` row per kind of event of this database that was lost, with how
/// many (traits: events, lost_event, lost_outcome); and one for the losses whose database
/// could not be kept (more databases losing events at once than the queue keeps counts for:
/// `database_unknown`, recorded by whichever writer finds them).
fn loss_events(db: u32, losses: Option<mfa_auth_core::audit::Losses>, unknown: u64) -> Vec<Entry> {
    let mut out: Vec<Entry> = losses
        .map(|l| l.kinds())
        .unwrap_or_default()
        .into_iter()
        .map(|(event, outcome, n)| {
            let mut t = Traits::new().int("events", i64::from(n)).label("lost_event", event.name());
            if let Some(o) = outcome {
                t = t.label("lost_outcome", o.name());
            }
            event_of_worker(Event::EventsLost, db).traits(&t)
        })
        .collect();
    if unknown > 0 {
        out.push(
            event_of_worker(Event::EventsLost, db)
                .traits(&Traits::new().int("events", unknown as i64).label("database", "unknown")),
        );
    }
    out
}

fn event_of_worker(e: Event, db: u32) -> Entry {
    Entry::new(e, db, crate::pg::clock::now_us(), *crate::pg::ids::uuid_v7().as_bytes()).role("mfa_auth audit writer")
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
