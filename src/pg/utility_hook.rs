//! A ProcessUtility hook: after DISCARD ALL (what connection poolers run between clients) it
//! runs the callback it was installed with (the session module's: the backend's
//! database-session id is discarded too).
//!
//! The hook is deliberately transparent to Postgres errors: it is a plain C-ABI frame
//! that owns nothing with a destructor and calls the previous hook or the raw
//! `standard_ProcessUtility` symbol directly, so an ERROR raised by any utility
//! statement longjmps through it exactly as through a C hook, with its own SQLSTATE,
//! message and detail untouched. The only work it adds, after the statement succeeded,
//! resets two thread-local cells and cannot fail.

use pgrx::pg_sys;

static mut PREV: pg_sys::ProcessUtility_hook_type = None;
/// What runs after a DISCARD ALL succeeded (set once, by [`install`]).
static mut ON_DISCARD_ALL: fn() = || {};

extern "C" {
    #[link_name = "standard_ProcessUtility"]
    fn raw_standard_process_utility(
        pstmt: *mut pg_sys::PlannedStmt,
        query_string: *const core::ffi::c_char,
        read_only_tree: bool,
        context: pg_sys::ProcessUtilityContext::Type,
        params: pg_sys::ParamListInfo,
        query_env: *mut pg_sys::QueryEnvironment,
        dest: *mut pg_sys::DestReceiver,
        qc: *mut pg_sys::QueryCompletion,
    );
}

/// Whether the statement is DISCARD ALL (reads the parse tree only; cannot raise).
unsafe fn is_discard_all(pstmt: *mut pg_sys::PlannedStmt) -> bool {
    let node = (*pstmt).utilityStmt;
    !node.is_null()
        && (*node).type_ == pg_sys::NodeTag::T_DiscardStmt
        && (*(node as *mut pg_sys::DiscardStmt)).target == pg_sys::DiscardMode::DISCARD_ALL
}

#[allow(clippy::too_many_arguments)]
unsafe extern "C-unwind" fn process_utility(
    pstmt: *mut pg_sys::PlannedStmt,
    query_string: *const core::ffi::c_char,
    read_only_tree: bool,
    context: pg_sys::ProcessUtilityContext::Type,
    params: pg_sys::ParamListInfo,
    query_env: *mut pg_sys::QueryEnvironment,
    dest: *mut pg_sys::DestReceiver,
    qc: *mut pg_sys::QueryCompletion,
) {
    let discard = is_discard_all(pstmt);
    match PREV {
        Some(prev) => prev(pstmt, query_string, read_only_tree, context, params, query_env, dest, qc),
        None => raw_standard_process_utility(pstmt, query_string, read_only_tree, context, params, query_env, dest, qc),
    }
    if discard {
        crate::pg::guard::hook_body((), ON_DISCARD_ALL);
    }
}

/// Installs the hook; `on_discard_all` runs after every DISCARD ALL (it must not raise).
pub fn install(on_discard_all: fn()) {
    // SAFETY: _PG_init runs once per backend, before any statement reaches the hook.
    unsafe {
        ON_DISCARD_ALL = on_discard_all;
        PREV = pg_sys::ProcessUtility_hook;
        pg_sys::ProcessUtility_hook = Some(process_utility);
    }
}
