//! The guard around every callback Postgres calls outside the fmgr.

/// The body of a hook Postgres calls outside the fmgr (GUC check/assign/show hooks, transaction
/// callbacks, the ProcessUtility hook's own work): a Rust panic there, a bug, must not unwind
/// into Postgres's C frames (undefined behaviour; in practice the backend aborts and the
/// postmaster restarts every connection), so it is caught and the hook answers `fallback`. The
/// panic message still reaches the server log. (These hooks call nothing that raises a
/// Postgres ERROR; docs/testing.md lists each contract.)
pub(crate) fn hook_body<R>(fallback: R, f: impl FnOnce() -> R) -> R {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_or(fallback)
}
