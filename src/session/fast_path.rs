//! The per-statement answers of auth.aal() and auth.mfa_satisfied(), published for their C
//! entry points (src/api/sessions.rs), which answer a hit without entering pgrx's wrapper.

use std::sync::atomic::{AtomicI64, AtomicU32, Ordering};

use super::{raw, statement_key, StatementKey};

/// A C function's answer for the current statement, for its per-row fast path. A backend
/// is one process with one thread, so plain process-global atomics (relaxed loads are
/// ordinary moves) replace thread-locals here: in a dlopen()ed library every thread-local
/// access is a __tls_get_addr call, which costs more than the rest of a cache hit.
pub(crate) struct FastPath {
    statement: AtomicI64,
    role: AtomicU32,
    /// Never 0 while valid.
    answer: AtomicU32,
}

impl FastPath {
    const fn new() -> FastPath {
        FastPath { statement: AtomicI64::new(i64::MIN), role: AtomicU32::new(0), answer: AtomicU32::new(0) }
    }

    /// The published answer, if it is for the current statement and role. Cannot raise.
    #[inline]
    pub(crate) fn hit(&self) -> Option<u32> {
        let answer = self.answer.load(Ordering::Relaxed);
        // SAFETY: plain reads of backend state that cannot raise an ERROR.
        let (start, role) = unsafe { (raw::GetCurrentStatementStartTimestamp(), raw::GetOuterUserId()) };
        (answer != 0
            && self.statement.load(Ordering::Relaxed) == start
            && self.role.load(Ordering::Relaxed) == role.to_u32())
        .then_some(answer)
    }

    /// Publishes `answer` (non-zero) for `key`'s statement, only if no claim changed while
    /// it was computed.
    pub(super) fn publish(&self, key: StatementKey, answer: u32) {
        if key == statement_key() {
            self.role.store(key.role.to_u32(), Ordering::Relaxed);
            self.answer.store(answer, Ordering::Relaxed);
            self.statement.store(key.statement_start, Ordering::Relaxed);
        }
    }

    pub(super) fn reset(&self) {
        self.statement.store(i64::MIN, Ordering::Relaxed);
    }
}

pub(crate) static AAL_FAST: FastPath = FastPath::new();
pub(crate) static SATISFIED_FAST: FastPath = FastPath::new();
