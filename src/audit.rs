//! The audit trail (auth.mfa_audit_log): the pgrx shell around [`crate::otp::audit`].
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

use crate::error::{raise, required, MfaError, OrRaise};
use crate::guc;
pub use crate::otp::audit::{Entry, Event, Outcome, Traits};
use crate::otp::audit::{Queue, Start};

/// Events the shared queue holds (× 344 bytes, about 350 kB of shared memory). pgrx builds the
/// initial value on the postmaster's stack, several copies deep: a queue of megabytes there
/// overflows it (seen: 8192 slots, a segmentation fault at server start). A writer is woken
/// as soon as a quarter is used, so this holds the bursts between two of its rounds.
pub const CAPACITY: usize = 1024;
/// How often a writer looks for events.
const POLL: Duration = Duration::from_millis(100);
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

thread_local! {
    /// This transaction's events that wait for its commit, with the subtransaction that made each.
    static PENDING: RefCell<Vec<(pg_sys::SubTransactionId, Entry)>> = const { RefCell::new(Vec::new()) };
}

/// Called from _PG_init: the shared queue when preloading; the transaction callbacks always.
pub fn init() {
    if unsafe { pg_sys::process_shared_preload_libraries_in_progress } {
        pg_shmem_init!(QUEUE = Shared(Queue::new()));
        SHARED.store(true, Ordering::Relaxed);
    }
    unsafe extern "C-unwind" fn on_xact(event: pg_sys::XactEvent::Type, _arg: *mut core::ffi::c_void) {
        use pg_sys::XactEvent::*;
        match event {
            XACT_EVENT_COMMIT | XACT_EVENT_PARALLEL_COMMIT | XACT_EVENT_PREPARE => {
                crate::guc::hook_body((), flush_pending)
            }
            XACT_EVENT_ABORT | XACT_EVENT_PARALLEL_ABORT => {
                crate::guc::hook_body((), || PENDING.with(|p| p.borrow_mut().clear()))
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
            crate::guc::hook_body((), || PENDING.with(|p| p.borrow_mut().retain(|(s, _)| *s < my)));
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
    Entry::new(event, db, crate::clock::now_us(), *crate::ids::uuid_v7().as_bytes())
        .role(&crate::session::caller_role())
}

/// The usual fields of an event about one factor.
pub fn factor_event(
    event: Event,
    user: pgrx::Uuid,
    factor: pgrx::Uuid,
    factor_type: crate::factor_types::FactorType,
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
    guc::AUDIT.get()
}

/// Records `e` whatever happens to the caller's transaction (failures, refusals).
pub fn now(e: Entry) {
    if !enabled() {
        return;
    }
    if SHARED.load(Ordering::Relaxed) {
        push(std::slice::from_ref(&e));
    } else {
        insert_here(&e);
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
        PENDING.with(|p| p.borrow_mut().push((sub, e)));
    } else {
        insert_here(&e);
    }
}

fn flush_pending() {
    let events: Vec<Entry> = PENDING.with(|p| p.borrow_mut().drain(..).map(|(_, e)| e).collect());
    if !events.is_empty() {
        push(&events);
    }
}

/// Queues events of this database and makes sure a writer runs for it. Cannot raise.
fn push(events: &[Entry]) {
    let db = events[0].database;
    let (start, wake, orphans) = {
        let mut q = QUEUE.exclusive();
        for e in events {
            q.0.push(e);
        }
        let wake = if q.0.usage().0 >= CAPACITY / 4 { q.0.worker_pid(db) } else { None };
        (q.0.start_worker(db, crate::clock::now_us()), wake, q.0.may_have_orphans())
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

/// Asks the postmaster for a writer of database `db` (its slot in the queue is reserved).
fn register_writer(db: u32) {
    let started = BackgroundWorkerBuilder::new("mfa_auth audit writer")
        .set_type("mfa_auth audit writer")
        .set_library("mfa_auth")
        .set_function("mfa_auth_audit_worker")
        .set_argument(Some(pg_sys::Datum::from(db)))
        .enable_spi_access()
        .set_start_time(BgWorkerStartTime::RecoveryFinished)
        .set_restart_time(None)
        .load_dynamic();
    if started.is_err() {
        // No free worker slot now (max_worker_processes): the events wait; the database's
        // next event, or the next round of any running writer, tries again.
        QUEUE.exclusive().0.start_failed(db);
    }
}

/// Events of a database whose writer could not be started when they were queued (no free
/// worker slot) get one now: tried by every push while such events may exist, and by every
/// idle round of a running writer.
fn adopt_orphans() {
    let orphan = {
        let mut q = QUEUE.exclusive();
        match q.0.orphaned() {
            Some(db) if q.0.start_worker(db, crate::clock::now_us()) == Start::StartOne => Some(db),
            _ => None,
        }
    };
    if let Some(db) = orphan {
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
            AS e(id, us, event, outcome, user_id, factor_id, session_id, ip, payload)";

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
        if guc::AUDIT_LOG_SERVER.get() { payloads.iter().map(|p| p.to_string()).collect() } else { Vec::new() };
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

/// Without the library preloaded: the event is inserted in the caller's transaction.
fn insert_here(e: &Entry) {
    Spi::connect_mut(|client| {
        // A database still on 0.2.0's SQL (before ALTER EXTENSION mfa_auth UPDATE) has no trail.
        // The table's OID is kept for the backend and checked in the relation cache (no
        // statement per event); a dropped and re-created extension is looked up again.
        let cached = TABLE.get().filter(|oid| {
            // SAFETY: a syscache look-up by OID; NULL when no such relation exists.
            let name = unsafe { pg_sys::get_rel_name(*oid) };
            !name.is_null() && unsafe { core::ffi::CStr::from_ptr(name) }.to_bytes() == b"mfa_audit_log"
        });
        let table = cached.or_else(|| {
            client
                .select("SELECT pg_catalog.to_regclass('auth.mfa_audit_log')::pg_catalog.oid", None, &[])
                .or_raise()
                .first()
                .get::<pg_sys::Oid>(1)
                .or_raise()
        });
        TABLE.set(table);
        if table.is_some() {
            write(client, std::slice::from_ref(e));
        }
    });
}

thread_local! {
    /// auth.mfa_audit_log's OID, once seen by this backend (without preloading).
    static TABLE: std::cell::Cell<Option<pg_sys::Oid>> = const { std::cell::Cell::new(None) };
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

/// The audit writer of one database (a dynamic background worker; its argument is the
/// database's OID).
#[pg_guard]
#[no_mangle]
pub extern "C-unwind" fn mfa_auth_audit_worker(arg: pg_sys::Datum) {
    let db = arg.value() as u32;
    BackgroundWorker::attach_signal_handlers(SignalWakeFlags::SIGHUP | SignalWakeFlags::SIGTERM);
    BackgroundWorker::connect_worker_to_spi_by_oid(Some(pg_sys::Oid::from(db)), None);
    // SAFETY: a plain read of a backend global.
    let pid = unsafe { pg_sys::MyProcPid };
    if !QUEUE.exclusive().0.worker_started(db, pid, crate::clock::now_us()) {
        return; // another writer runs for this database
    }
    // The extension may have been dropped (or not updated to 0.3.0) since the events were queued.
    let mut installed = false;
    in_transaction("the installation check", || {
        installed = Spi::get_one::<bool>(
            "SELECT pg_catalog.to_regclass('auth.mfa_audit_log') IS NOT NULL
                AND EXISTS (SELECT FROM pg_catalog.pg_extension WHERE extname OPERATOR(pg_catalog.=) 'mfa_auth')",
        )
        .ok()
        .flatten()
        .unwrap_or(false);
        if installed {
            Spi::connect(crate::spi_util::check_schema);
        }
    });
    if !installed {
        let mut q = QUEUE.exclusive();
        q.0.discard(db);
        q.0.worker_exit(db, pid, true);
        return;
    }
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
        batch.clear();
        let lost = {
            let mut q = QUEUE.exclusive();
            if !q.0.heartbeat(db, pid, crate::clock::now_us()) {
                return; // replaced by another writer
            }
            q.0.take(db, BATCH, &mut batch);
            q.0.take_lost()
        };
        if lost > 0 {
            batch.push(event_of_worker(Event::EventsLost, db).traits(&Traits::new().int("events", lost as i64)));
        }
        if !batch.is_empty() {
            idle = Duration::ZERO;
            let n = batch.len();
            if !in_transaction("writing events", || Spi::connect_mut(|client| write(client, &batch))) {
                warning!("mfa_auth audit writer: {n} events of database {db} were not recorded");
            }
            if batch.len() == BATCH && !shutdown {
                continue; // more may be waiting
            }
        }
        if batch.is_empty() {
            adopt_orphans();
        }
        if since_retention >= RETENTION_EVERY {
            since_retention = Duration::ZERO;
            let keep = guc::AUDIT_RETENTION.get();
            if keep > 0 {
                in_transaction("the retention cleanup", || {
                    let deleted = Spi::connect_mut(|client| {
                        delete_older(client, Interval::from_seconds(f64::from(keep)), 10_000)
                    });
                    if deleted > 0 {
                        let e = event_of_worker(Event::Cleanup, db)
                            .traits(&Traits::new().int("audit_rows", deleted).label("by", "audit_retention"));
                        Spi::connect_mut(|client| write(client, std::slice::from_ref(&e)));
                    }
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
        // SAFETY: the worker's own latch; on postmaster death the process exits.
        unsafe {
            pg_sys::WaitLatch(
                pg_sys::MyLatch,
                (pg_sys::WL_LATCH_SET | pg_sys::WL_TIMEOUT | pg_sys::WL_EXIT_ON_PM_DEATH) as i32,
                POLL.as_millis() as _,
                pg_sys::PG_WAIT_EXTENSION,
            );
            pg_sys::ResetLatch(pg_sys::MyLatch);
        }
        // A SIGTERM sets ShutdownRequestPending: the next round writes what is queued and exits.
        idle += POLL;
        since_retention += POLL;
    }
}

fn event_of_worker(e: Event, db: u32) -> Entry {
    Entry::new(e, db, crate::clock::now_us(), *crate::ids::uuid_v7().as_bytes()).role("mfa_auth audit writer")
}

/// Deletes audit rows older than `older_than` (default: mfa_auth.audit_retention; nothing when
/// that is 0), at most `batch_size` of them, along the created_at index (cost O(deleted));
/// returns how many.
#[pg_extern(volatile, security_definer)]
#[search_path(pg_catalog, pg_temp)]
fn cleanup_audit_log(older_than: default!(Option<Interval>, "NULL"), batch_size: default!(Option<i32>, 1000)) -> i64 {
    crate::error::require_writable("auth.cleanup_audit_log()");
    let batch = required(batch_size, "batch_size");
    if !(1..=1_000_000).contains(&batch) {
        raise(MfaError::invalid("batch_size", "must be between 1 and 1000000"));
    }
    // Without an argument the setting decides, and mfa_auth.audit_retention = 0 keeps every row.
    let older_than = match older_than {
        Some(i) => i,
        None if guc::AUDIT_RETENTION.get() == 0 => return 0,
        None => Interval::from_seconds(f64::from(guc::AUDIT_RETENTION.get())),
    };
    if older_than.as_micros() < 0 {
        raise(MfaError::invalid("older_than", "must not be negative"));
    }
    let deleted = Spi::connect_mut(|client| {
        crate::spi_util::check_schema(client);
        delete_older(client, older_than, batch)
    });
    at_commit(event(Event::Cleanup).traits(&Traits::new().int("audit_rows", deleted)));
    deleted
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
    let shared = SHARED.load(Ordering::Relaxed);
    let (queued, total, lost, writers) = if shared {
        let q = QUEUE.share();
        let (u, t, l) = q.0.usage();
        (u as i32, t as i64, l as i64, q.0.workers().filter(|w| w.pid().is_some()).count() as i32)
    } else {
        (0, 0, 0, 0)
    };
    TableIterator::once((shared, if shared { CAPACITY as i32 } else { 0 }, queued, total, lost, writers))
}
