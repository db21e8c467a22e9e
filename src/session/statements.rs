//! The session look-ups, prepared once per backend under the pinned search_path and run as
//! the claims table's owner: the newest MFA claim, the AMR list, whether the user has a
//! verified factor.

use pgrx::datum::DatumWithOid;
use pgrx::prelude::*;
use pgrx::spi::OwnedPreparedStatement;
use pgrx::PgOid;

use super::{as_owner, to_pg, with_cache, Identity};
use crate::pg::error::OrRaise;

thread_local! {
    static STATEMENTS: std::cell::RefCell<Option<Statements>> = const { std::cell::RefCell::new(None) };
}

/// Per-backend: the claims table's owner, the aal_level label OIDs, and the prepared look-ups.
pub(super) struct Statements {
    pub(super) owner: pg_sys::Oid,
    pub(super) aal1: pg_sys::Oid,
    pub(super) aal2: pg_sys::Oid,
    pub(super) last_mfa: OwnedPreparedStatement,
    pub(super) amr: OwnedPreparedStatement,
    pub(super) enrolled: OwnedPreparedStatement,
}

// Every name qualified, operators included: these plans are made under the caller's
// search_path, which must not be able to change what they mean. $1 is the session, $2 the
// user: an MFA claim counts only through a factor of that user (auth.mfa_verified_claims).
const LAST_MFA_SQL: &str = "SELECT pg_catalog.max(v.updated_at) FROM auth.mfa_verified_claims v
     WHERE v.session_id OPERATOR(pg_catalog.=) $1 AND v.user_id OPERATOR(pg_catalog.=) $2";
const AMR_SQL: &str = "SELECT auth.session_amr($1, $2)";
// Whether user $1 has a verified factor (on mfa_factors_user_id_idx).
const ENROLLED_SQL: &str = "SELECT EXISTS (SELECT FROM auth.mfa_factors f
     WHERE f.user_id OPERATOR(pg_catalog.=) $1 AND f.status OPERATOR(pg_catalog.=) 'verified'::auth.factor_status)";

pub(super) fn with_statements<R>(f: impl FnOnce(&Statements) -> R) -> R {
    STATEMENTS.with(|s| {
        if s.borrow().is_none() {
            // Parsed and planned under the pinned search_path, as they run (as_owner).
            let st = crate::pg::schema::pinned(|| Spi::connect(|client| {
                crate::pg::schema::check_schema(client);
                let row = client
                    .select(
                        "SELECT c.relowner,
                                (SELECT e.oid FROM pg_catalog.pg_enum e WHERE e.enumtypid OPERATOR(pg_catalog.=) 'auth.aal_level'::pg_catalog.regtype AND e.enumlabel OPERATOR(pg_catalog.=) 'aal1'),
                                (SELECT e.oid FROM pg_catalog.pg_enum e WHERE e.enumtypid OPERATOR(pg_catalog.=) 'auth.aal_level'::pg_catalog.regtype AND e.enumlabel OPERATOR(pg_catalog.=) 'aal2')
                           FROM pg_catalog.pg_class c WHERE c.oid OPERATOR(pg_catalog.=) 'auth.mfa_amr_claims'::pg_catalog.regclass",
                        None,
                        &[],
                    )
                    .or_raise()
                    .first();
                let owner: pg_sys::Oid = row.get(1).or_raise().expect("relowner");
                let aal1: pg_sys::Oid = row.get(2).or_raise().expect("aal1");
                let aal2: pg_sys::Oid = row.get(3).or_raise().expect("aal2");
                let uuids = [PgOid::from(pg_sys::UUIDOID), PgOid::from(pg_sys::UUIDOID)];
                let last_mfa = client.prepare(LAST_MFA_SQL, &uuids).or_raise().keep();
                let amr = client.prepare(AMR_SQL, &uuids).or_raise().keep();
                let enrolled = client.prepare(ENROLLED_SQL, &uuids[..1]).or_raise().keep();
                Statements { owner, aal1, aal2, last_mfa, amr, enrolled }
            }));
            *s.borrow_mut() = Some(st);
        }
        f(s.borrow().as_ref().expect("just filled"))
    })
}

/// Runs one of the prepared per-session look-ups for the current session and user, as the
/// claims table's owner; None without a session or user.
pub(super) fn session_lookup<T: FromDatum + IntoDatum>(
    me: Identity,
    statement: impl Fn(&Statements) -> &OwnedPreparedStatement,
) -> Option<T> {
    let (sid, uid) = (to_pg(me.session_id)?, to_pg(me.uid)?);
    with_statements(|st| {
        as_owner(st.owner, || {
            Spi::connect(|client| {
                let args: [DatumWithOid; 2] = [sid.into(), uid.into()];
                client.select(statement(st), None, &args).or_raise().first().get::<T>(1).or_raise()
            })
        })
    })
}

/// updated_at of the current session's newest MFA claim of the current user, cached for
/// the statement.
pub(super) fn last_mfa() -> Option<i64> {
    let (me, cached) = with_cache(|c| (c.identity, c.last_mfa));
    if let Some(v) = cached {
        return v;
    }
    let v = session_lookup::<TimestampWithTimeZone>(me, |st| &st.last_mfa).map(|t| t.into_inner());
    with_cache(|c| c.last_mfa = Some(v));
    v
}
