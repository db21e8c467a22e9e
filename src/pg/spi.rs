//! Statements the flow runs on every call, parsed and planned once per backend
//! (SPI_prepare + SPI_keepplan) and reused; the plan cache re-plans them when the
//! tables change.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use pgrx::datum::DatumWithOid;
use pgrx::prelude::*;
use pgrx::spi::{OwnedPreparedStatement, SpiClient, SpiTupleTable};
use pgrx::PgOid;

use crate::pg::error::{raise, MfaError};
use crate::pg::schema::{check_schema, pinned};

thread_local! {
    static PLANS: RefCell<HashMap<&'static str, Rc<OwnedPreparedStatement>>> = RefCell::new(HashMap::new());
}

/// A statement with its parameter types, identified by its text.
pub struct Stmt {
    pub sql: &'static str,
    pub args: &'static [pg_sys::Oid],
}

fn plan(client: &SpiClient<'_>, stmt: &Stmt) -> Rc<OwnedPreparedStatement> {
    if let Some(p) = PLANS.with(|m| m.borrow().get(stmt.sql).cloned()) {
        return p;
    }
    check_schema(client);
    let oids: Vec<PgOid> = stmt.args.iter().map(|o| PgOid::from(*o)).collect();
    let prepared = client
        .prepare_mut(stmt.sql, &oids)
        .unwrap_or_else(|e| raise(MfaError::Internal(format!("preparing an internal statement failed: {e}"))))
        .keep();
    let p = Rc::new(prepared);
    PLANS.with(|m| m.borrow_mut().insert(stmt.sql, p.clone()));
    p
}

/// Runs a cached statement. Errors raised by Postgres inside it (constraint
/// violations, lock timeouts, ...) propagate with their own SQLSTATE.
pub fn run<'conn>(client: &mut SpiClient<'conn>, stmt: &Stmt, args: &[DatumWithOid<'_>]) -> SpiTupleTable<'conn> {
    pinned(|| {
        let p = plan(client, stmt);
        client
            .update(&*p, None, args)
            .unwrap_or_else(|e| raise(MfaError::Internal(format!("an internal statement failed: {e}"))))
    })
}

thread_local! {
    /// Plans of the statements [`fresh_row`] runs, kept for the backend (SPI_keepplan).
    static FRESH_PLANS: RefCell<HashMap<&'static str, usize>> = RefCell::new(HashMap::new());
}

/// Takes the per-user lock that serialises the changes which decide a user's trust state:
/// enrolling a factor, verifying a first factor, generating recovery codes, and the checks of
/// the self-service paths. Held to the end of the transaction. Run the checks it guards with
/// [`fresh_row`] afterwards, never in the same statement: a statement's snapshot is taken
/// before it waits on the lock, so it would not see what the previous holder committed.
pub fn lock_user(client: &mut SpiClient<'_>, user_id: pgrx::Uuid) {
    run(client, &LOCK_USER, &[user_id.into()]);
}

const LOCK_USER: Stmt = Stmt {
    sql: "SELECT pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtextextended('mfa_auth.enroll:' OPERATOR(pg_catalog.||) $1::pg_catalog.text, 0))",
    args: &[pg_sys::UUIDOID],
};

/// The one row of a check made after [`lock_user`], read while it is current.
pub struct FreshRow {
    tuple: pg_sys::HeapTuple,
    desc: pg_sys::TupleDesc,
}

impl FreshRow {
    /// Column `n` (1-based), or None for NULL.
    pub fn get<T: FromDatum>(&self, n: i32) -> Option<T> {
        let mut isnull = false;
        // SAFETY: the tuple and its descriptor belong to SPI_tuptable of the statement just run,
        // alive until the next SPI call; FromDatum copies what it returns.
        unsafe {
            let datum = pg_sys::SPI_getbinval(self.tuple, self.desc, n, &mut isnull);
            T::from_datum(datum, isnull)
        }
    }
}

/// Runs `stmt`, a one-row check, with a snapshot taken now (GetLatestSnapshot) instead of the
/// statement's or the transaction's, and hands its row to `read`. Under READ COMMITTED and
/// REPEATABLE READ alike it sees every transaction that committed before it started (the
/// previous holder of [`lock_user`] included), as Postgres's own foreign-key checks do. Under
/// REPEATABLE READ the transaction's snapshot is the cross-check: a row it locks (FOR UPDATE)
/// that changed since that snapshot raises 40001, as any update of such a row would.
pub fn fresh_row<R>(
    client: &mut SpiClient<'_>,
    stmt: &Stmt,
    args: &[DatumWithOid<'_>],
    read: impl FnOnce(&FreshRow) -> R,
) -> R {
    pinned(|| fresh_row_pinned(client, stmt, args, read))
}

fn fresh_row_pinned<R>(
    client: &mut SpiClient<'_>,
    stmt: &Stmt,
    args: &[DatumWithOid<'_>],
    read: impl FnOnce(&FreshRow) -> R,
) -> R {
    if args.len() != stmt.args.len() {
        raise(MfaError::Internal(format!("{} arguments for a statement of {}", args.len(), stmt.args.len())));
    }
    let plan = FRESH_PLANS.with(|m| m.borrow().get(stmt.sql).copied()).unwrap_or_else(|| {
        check_schema(client);
        let Ok(sql) = std::ffi::CString::new(stmt.sql) else {
            raise(MfaError::Internal("a NUL in an internal statement".into()))
        };
        let mut types: Vec<pg_sys::Oid> = stmt.args.to_vec();
        // SAFETY: SPI is connected (the caller holds a client); the plan is kept for the backend.
        let plan = unsafe {
            let plan = pg_sys::SPI_prepare(sql.as_ptr(), types.len() as i32, types.as_mut_ptr());
            if plan.is_null() {
                let code = pg_sys::SPI_result;
                raise(MfaError::Internal(format!("preparing an internal statement failed (SPI code {code})")));
            }
            pg_sys::SPI_keepplan(plan);
            plan
        };
        FRESH_PLANS.with(|m| m.borrow_mut().insert(stmt.sql, plan as usize));
        plan as usize
    }) as pg_sys::SPIPlanPtr;
    let mut values: Vec<pg_sys::Datum> =
        args.iter().map(|a| a.datum().map(|d| d.sans_lifetime()).unwrap_or(pg_sys::Datum::from(0usize))).collect();
    let nulls: Vec<core::ffi::c_char> =
        args.iter().map(|a| if a.datum().is_some() { b' ' } else { b'n' } as core::ffi::c_char).collect();
    // SAFETY: SPI is connected; the values and nulls outlive the call; the snapshots are
    // Postgres's own (SPI pushes a copy of the latest one).
    unsafe {
        let crosscheck = if pg_sys::XactIsoLevel >= pg_sys::XACT_REPEATABLE_READ as i32 {
            pg_sys::GetTransactionSnapshot()
        } else {
            std::ptr::null_mut()
        };
        let rc = pg_sys::SPI_execute_snapshot(
            plan,
            values.as_mut_ptr(),
            nulls.as_ptr(),
            pg_sys::GetLatestSnapshot(),
            crosscheck,
            false,
            false,
            2,
        );
        let processed = pg_sys::SPI_processed;
        if rc != pg_sys::SPI_OK_SELECT as i32 || processed != 1 {
            raise(MfaError::Internal(format!("a check returned {processed} rows (SPI code {rc})")));
        }
        let table = pg_sys::SPI_tuptable;
        read(&FreshRow { tuple: *(*table).vals, desc: (*table).tupdesc })
    }
}
