//! The writers: one background worker per database that takes its events from the shared
//! queue and inserts them, started by the launcher; their environment of their own.

use std::time::Duration;

use pgrx::prelude::*;

use super::*;

/// Asks the postmaster for a writer of database `db` (its slot in the queue is reserved);
/// false when no worker slot is free (the reservation stays: the caller serves it).
pub(super) fn try_register_writer(db: u32) -> bool {
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
pub(super) fn register_writer(db: u32) {
    if !try_register_writer(db) {
        // No free worker slot now (max_worker_processes): the events wait; the reserved
        // writer serves them within LAUNCHER_POLL (or the next event, or the next round of
        // any running writer, finds a slot).
        QUEUE.exclusive().0.start_failed(db);
    }
}

/// A database with queued events and no writer, marked as starting one (the caller starts it).
pub(super) fn claim_orphan() -> Option<u32> {
    let mut q = QUEUE.exclusive();
    match q.0.orphaned() {
        Some(db) if q.0.start_worker(db, crate::pg::clock::now_us()) == Start::StartOne => Some(db),
        _ => None,
    }
}

/// Events of a database whose writer could not be started when they were queued (no free
/// worker slot) get one now: tried by every push while such events may exist, and by every
/// idle round of a running writer.
pub(super) fn adopt_orphans() {
    if let Some(db) = claim_orphan() {
        register_writer(db);
    }
}

/// How soon the postmaster starts the reserved writer again after it served a database (a
/// process connects to one database in its life).
pub(super) const LAUNCHER_RESTART: Duration = Duration::from_secs(1);
/// How often the reserved writer looks for events without a writer.
pub(super) const LAUNCHER_POLL: Duration = Duration::from_millis(500);
/// Tries in a row to serve a database that never connected (it was dropped) before its
/// events are discarded.
pub(super) const FALLBACK_TRIES: u32 = 3;

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
pub(super) fn serve(db: u32) {
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
    // Counts whose rows another transaction held locked when their events were written
    // (COUNT_SQL skips those rows): written again every round until their rows are free.
    let mut held: Vec<Entry> = Vec::new();
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
                // Replaced by another writer: a batch not written goes back to the queue, and
                // the counts still to write (their rows are written).
                q.0.requeue(&batch);
                q.0.requeue(&without_rows(&held));
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
        if !batch.is_empty() || !held.is_empty() {
            if !batch.is_empty() {
                idle = Duration::ZERO;
            }
            let n = batch.len();
            let mut still_held = Vec::new();
            if in_transaction("writing events", || {
                crate::session::as_owner(owner, || {
                    Spi::connect_mut(|client| {
                        write(client, &batch);
                        let counts: Vec<Entry> = held.iter().chain(batch.iter()).copied().collect();
                        still_held = write_counts(client, &counts);
                    })
                })
            }) {
                if still_held.len() > CAPACITY {
                    warning!(
                        "mfa_auth audit writer: {} failure counts of database {db} wait for rows other transactions hold; the oldest {} are given up (their shared-memory counts stay)",
                        still_held.len(),
                        still_held.len() - CAPACITY
                    );
                    still_held.drain(..still_held.len() - CAPACITY);
                }
                held = still_held;
                // Committed: a rejecting call waiting for its sign-out may return.
                if let Some(last) = batch.iter().map(Entry::seq).max() {
                    QUEUE.exclusive().0.mark_written(db, last);
                }
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
            let mut q = QUEUE.exclusive();
            // Saved with the queue at the end of a clean shutdown, written after the next start.
            q.0.requeue(&without_rows(&held));
            q.0.worker_exit(db, pid, true);
            return;
        }
        if idle >= IDLE_EXIT && held.is_empty() && QUEUE.exclusive().0.worker_exit(db, pid, false) {
            return;
        }
        wait(POLL);
        // A SIGTERM sets ShutdownRequestPending: the next round writes what is queued and exits.
        idle += POLL;
        since_retention += POLL;
    }
}

/// Counts still to write, as queue entries whose rows are already written.
fn without_rows(held: &[Entry]) -> Vec<Entry> {
    held.iter().map(|e| e.without_row()).collect()
}

/// The writer's own settings, whatever the database's say. The writer connects as the
/// bootstrap superuser, and InitPostgres applies `ALTER DATABASE ... SET` values to it: the
/// database's owner, who is not a superuser, could otherwise run it as their own role (no
/// right to write the trail), read-only, under tiny timeouts, or with a search_path that
/// resolves its statements' names to the owner's objects (code run as a superuser). Set with
/// the highest source (PGC_S_OVERRIDE), so a reload of the configuration files keeps them.
pub(super) const WRITER_SETTINGS: &[(&core::ffi::CStr, &core::ffi::CStr)] = &[
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

pub(super) fn set_option(name: &core::ffi::CStr, value: &core::ffi::CStr) {
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
pub(super) const DATABASE_SETTINGS_SQL: &str = "SELECT s.name, COALESCE(
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
pub(super) fn own_environment() {
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
pub(super) fn wait(d: Duration) {
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
pub(super) fn loss_events(db: u32, losses: Option<mfa_auth_core::audit::Losses>, unknown: u64) -> Vec<Entry> {
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

pub(super) fn event_of_worker(e: Event, db: u32) -> Entry {
    Entry::new(e, db, crate::pg::clock::now_us(), *crate::pg::ids::uuid_v7().as_bytes()).role("mfa_auth audit writer")
}
