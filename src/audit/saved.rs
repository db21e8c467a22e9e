//! The queue saved to a file at a clean shutdown and restored at the next start.

use pgrx::prelude::*;

use super::*;

/// Where a clean shutdown saves the events still queued (in the data directory; read and
/// removed at the next start).
pub(super) const SAVED_FILE: &str = "mfa_auth_audit.queue";

pub(super) fn saved_path() -> Option<std::path::PathBuf> {
    // SAFETY: DataDir is set in the postmaster before shared memory is made.
    let dir = unsafe { pg_sys::DataDir };
    if dir.is_null() {
        return None;
    }
    let dir = unsafe { core::ffi::CStr::from_ptr(dir) }.to_str().ok()?;
    Some(std::path::Path::new(dir).join(SAVED_FILE))
}

#[pg_guard]
pub(super) unsafe extern "C-unwind" fn on_shmem_startup() {
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
pub(super) fn restore_saved() {
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

/// At the postmaster's exit after a shutdown (every other process is gone): the events no
/// writer could write (none running for their database, or its write failed) are saved for
/// the next start instead of being lost. After a crash (code != 0) nothing is saved: shared
/// memory may be inconsistent (docs: what a crash loses).
///
/// An immediate shutdown exits with code 0 too, after SIGQUIT ended every process wherever it
/// was: one may have died holding the queue's lock, mid-push. The postmaster has no PGPROC to
/// wait with (LWLockAcquire would PANIC: "cannot wait without a PGPROC structure"), so it only
/// tries the lock; held, the queue is not saved (it may be half-written), as after a crash.
pub(super) unsafe extern "C-unwind" fn save_at_exit(code: core::ffi::c_int, _arg: pg_sys::Datum) {
    if code != 0 {
        return;
    }
    crate::pg::guard::hook_body((), || {
        // SAFETY: the tranche was requested at preload; a conditional acquire never waits.
        let lock = unsafe { &raw mut (*pg_sys::GetNamedLWLockTranche(QUEUE.name().as_ptr())).lock };
        if !unsafe { pg_sys::LWLockConditionalAcquire(lock, pg_sys::LWLockMode::LW_EXCLUSIVE) } {
            log!("mfa_auth: the audit queue's lock is held by a process that did not exit (an immediate shutdown): its queued events are not saved");
            return;
        }
        // Free, and no other process is alive to take it: released for QUEUE's own guard.
        unsafe { pg_sys::LWLockRelease(lock) };
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
