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
    let oids: Vec<PgOid> = stmt.args.iter().map(|o| PgOid::from(*o)).collect();
    let prepared = client
        .prepare_mut(stmt.sql, &oids)
        .unwrap_or_else(|e| panic!("preparing an internal statement failed: {e}"))
        .keep();
    let p = Rc::new(prepared);
    PLANS.with(|m| m.borrow_mut().insert(stmt.sql, p.clone()));
    p
}

/// Runs a cached statement. Errors raised by Postgres inside it (constraint
/// violations, lock timeouts, ...) propagate with their own SQLSTATE.
pub fn run<'conn>(client: &mut SpiClient<'conn>, stmt: &Stmt, args: &[DatumWithOid<'_>]) -> SpiTupleTable<'conn> {
    let p = plan(client, stmt);
    client.update(&*p, None, args).unwrap_or_else(|e| panic!("an internal statement failed: {e}"))
}
