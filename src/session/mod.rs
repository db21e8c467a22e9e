//! Who is calling, in which session, and how that session authenticated:
//! auth.uid(), auth.session_id(), auth.aal(), auth.amr(), auth.mfa_verified_within(),
//! auth.role_user_id(), and the enforcement helpers auth.aal_next() and auth.mfa_satisfied().
//! Built for row-level-security policies:
//!
//! - Identity cannot be forged from SQL. Claims in `request.jwt.claims` count only when the
//!   caller's role is listed in the superuser-only setting `mfa_auth.jwt_claims_roles`
//!   (gateway mode); any other caller is its own database role (database-session mode).
//! - In database-session mode the session is a random id kept in this backend's memory,
//!   one per role (SET ROLE to another role is another user and another session), until
//!   disconnect or DISCARD ALL, and only when the superuser-only `mfa_auth.database_sessions`
//!   is on: behind a transaction pooler one server connection serves many clients, so by
//!   default a direct connection has no MFA session at all.
//! - The verified state is read from auth.mfa_amr_claims, never from a claim, and an MFA
//!   claim counts only for the user whose factor earned it (auth.mfa_verified_claims).
//! - Cheap per row: these are plain C functions (no SECURITY DEFINER, no SET), and each
//!   caches its answer for the current statement, so a policy that calls auth.aal() on
//!   every row runs one index look-up per statement. The cache is keyed on the statement
//!   start time and the caller's role, and is dropped whenever this backend verifies a
//!   code, records a claim, changes an identity setting (request.jwt.claims included, see
//!   src/session/settings.rs), rolls back a subtransaction, or runs DISCARD ALL.

use std::cell::{Cell, RefCell};
use std::ffi::CStr;

use pgrx::datum::DatumWithOid;
use pgrx::prelude::*;

use crate::pg::error::{raise, MfaError, OrRaise};

mod fast_path;
pub mod settings;
mod statements;

pub(crate) use fast_path::{AAL_FAST, SATISFIED_FAST};
use statements::{last_mfa, session_lookup, with_statements};

/// Called from _PG_init: a rolled-back subtransaction (ROLLBACK TO SAVEPOINT, an exception
/// block) may have undone a claim this backend recorded, so it drops the cache too.
pub fn init() {
    unsafe extern "C-unwind" fn on_subxact(
        event: pg_sys::SubXactEvent::Type,
        _my: pg_sys::SubTransactionId,
        _parent: pg_sys::SubTransactionId,
        _arg: *mut core::ffi::c_void,
    ) {
        if event == pg_sys::SubXactEvent::SUBXACT_EVENT_ABORT_SUB {
            crate::pg::guard::hook_body((), claims_changed);
        }
    }
    unsafe extern "C-unwind" fn on_xact(event: pg_sys::XactEvent::Type, _arg: *mut core::ffi::c_void) {
        if event == pg_sys::XactEvent::XACT_EVENT_ABORT || event == pg_sys::XactEvent::XACT_EVENT_PARALLEL_ABORT {
            crate::pg::guard::hook_body((), claims_changed);
        }
    }
    // SAFETY: registered once per backend; the callbacks only bump counters.
    unsafe {
        pg_sys::RegisterSubXactCallback(Some(on_subxact), std::ptr::null_mut());
        pg_sys::RegisterXactCallback(Some(on_xact), std::ptr::null_mut());
    }
}

/// The namespace of role-derived user ids (UUID v5 of the role name within it).
const ROLE_NAMESPACE: uuid::Uuid = uuid::uuid!("6d66615f-6175-5468-8000-726f6c657321");

/// The stable user id of a database role: UUID v5 of its name.
pub fn role_uuid(role: &str) -> uuid::Uuid {
    uuid::Uuid::new_v5(&ROLE_NAMESPACE, role.as_bytes())
}

/// Whether `role` is in the comma-separated `list`.
pub fn role_listed(list: &str, role: &str) -> bool {
    list.split(',').map(str::trim).any(|r| !r.is_empty() && r == role)
}

/// `sub` and `session_id` of a JWT claims object, when they are UUIDs.
pub fn parse_claims(json: &str) -> (Option<uuid::Uuid>, Option<uuid::Uuid>) {
    // Bounded before parsing: a claims text of any size is settable by every role.
    if json.len() > crate::otp::limits::JWT_CLAIMS {
        return (None, None);
    }
    let Ok(v) = serde_json::from_str::<serde_json::Value>(json) else { return (None, None) };
    let get = |k: &str| v.get(k).and_then(|x| x.as_str()).and_then(|s| uuid::Uuid::parse_str(s).ok());
    (get("sub"), get("session_id"))
}

thread_local! {
    /// This backend's database-session ids, one per role: made on first use, forgotten by
    /// DISCARD ALL.
    static DB_SESSIONS: RefCell<Vec<(pg_sys::Oid, uuid::Uuid)>> = const { RefCell::new(Vec::new()) };
    /// Bumped when this backend changes claims or runs DISCARD ALL: drops the cache.
    static GENERATION: Cell<u64> = const { Cell::new(0) };
    static CACHE: RefCell<Option<Cached>> = const { RefCell::new(None) };
}

/// The claims of this backend, or who the caller is, changed (a verification, a recorded
/// claim, an unenroll, an identity setting, a rolled-back subtransaction).
pub fn claims_changed() {
    GENERATION.with(|g| g.set(g.get().wrapping_add(1)));
    AAL_FAST.reset();
    SATISFIED_FAST.reset();
}

/// DISCARD ALL: a pooled connection handed to someone else starts a new session.
pub fn discard_all() {
    DB_SESSIONS.with(|s| s.borrow_mut().clear());
    claims_changed();
}

/// The database session of `role` in this backend.
fn db_session(role: pg_sys::Oid) -> uuid::Uuid {
    DB_SESSIONS.with(|s| {
        let mut s = s.borrow_mut();
        if let Some((_, id)) = s.iter().find(|(r, _)| *r == role) {
            return *id;
        }
        let id = uuid::Uuid::new_v4();
        s.push((role, id));
        id
    })
}

/// What makes a cached answer valid: the same top-level statement (its start time is set
/// for every client statement, so it also changes with every transaction), no claim change
/// by this backend since (`generation`), and the same caller role (SET ROLE inside a
/// function can change it mid-statement).
#[derive(Clone, Copy, PartialEq, Eq)]
struct StatementKey {
    statement_start: i64,
    generation: u64,
    role: pg_sys::Oid,
}

// The cache key is built on every call, i.e. on every row a policy filters. pgrx's
// bindings wrap each C call in an error boundary (sigsetjmp), which would cost more than
// the rest of the call; these two only read backend variables and cannot raise, so they
// are called directly.
mod raw {
    extern "C" {
        pub fn GetCurrentStatementStartTimestamp() -> i64;
        pub fn GetOuterUserId() -> pgrx::pg_sys::Oid;
    }
}

#[inline]
fn statement_key() -> StatementKey {
    // SAFETY: plain reads of backend state that cannot raise an ERROR.
    unsafe {
        StatementKey {
            statement_start: raw::GetCurrentStatementStartTimestamp(),
            generation: GENERATION.with(Cell::get),
            role: raw::GetOuterUserId(),
        }
    }
}

#[derive(Clone, Copy)]
pub struct Identity {
    pub uid: Option<uuid::Uuid>,
    pub session_id: Option<uuid::Uuid>,
    /// Gateway mode (identity from request.jwt.claims), else database-session mode.
    pub gateway: bool,
}

struct Cached {
    key: StatementKey,
    identity: Identity,
    /// updated_at (µs since 2000) of the session's newest MFA claim; Some(None): none.
    last_mfa: Option<Option<i64>>,
    /// auth.aal()'s answer (the aal_level label OID).
    aal: Option<pg_sys::Oid>,
    /// Whether the user has a verified factor (auth.aal_next() is aal2).
    enrolled: Option<bool>,
}

/// The name of the role the caller acts as (SET ROLE'd; unchanged by SECURITY DEFINER).
pub fn caller_role() -> String {
    // SAFETY: GetUserNameFromId returns a palloc'd C string or raises for a missing role.
    unsafe {
        let name = pg_sys::GetUserNameFromId(pg_sys::GetOuterUserId(), false);
        CStr::from_ptr(name).to_string_lossy().into_owned()
    }
}

/// Whether the caller's role is listed in mfa_auth.jwt_claims_roles.
pub fn in_gateway_mode() -> bool {
    let role = caller_role();
    settings::jwt_claims_roles().is_some_and(|l| role_listed(&l, &role))
}

fn resolve_identity(role: pg_sys::Oid) -> Identity {
    if in_gateway_mode() {
        // SAFETY: missing_ok = true returns NULL for an unset placeholder.
        let claims = unsafe { pg_sys::GetConfigOption(c"request.jwt.claims".as_ptr(), true, false) };
        let (uid, session_id) = if claims.is_null() {
            (None, None)
        } else {
            parse_claims(&unsafe { CStr::from_ptr(claims) }.to_string_lossy())
        };
        Identity { uid, session_id, gateway: true }
    } else {
        let session_id = settings::database_sessions().then(|| db_session(role));
        Identity { uid: Some(role_uuid(&caller_role())), session_id, gateway: false }
    }
}

fn with_cache<R>(f: impl FnOnce(&mut Cached) -> R) -> R {
    let key = statement_key();
    CACHE.with(|c| {
        let mut c = c.borrow_mut();
        if c.as_ref().map(|x| x.key != key).unwrap_or(true) {
            *c = Some(Cached { key, identity: resolve_identity(key.role), last_mfa: None, aal: None, enrolled: None });
        }
        f(c.as_mut().expect("just filled"))
    })
}

/// The caller's identity for the current statement.
pub fn identity() -> Identity {
    with_cache(|c| c.identity)
}

/// Runs `f` as the owner of auth.mfa_amr_claims (the extension's owner), the way a
/// SECURITY DEFINER function would (search_path pinned too: pg::schema::pinned), and switches
/// back even if `f` raises.
pub(crate) fn as_owner<R>(owner: pg_sys::Oid, f: impl FnOnce() -> R) -> R {
    struct Restore(pg_sys::Oid, i32);
    impl Drop for Restore {
        fn drop(&mut self) {
            // SAFETY: restores what GetUserIdAndSecContext returned.
            unsafe { pg_sys::SetUserIdAndSecContext(self.0, self.1) }
        }
    }
    let mut user = pg_sys::Oid::INVALID;
    let mut context = 0i32;
    // SAFETY: out-parameters of the right types.
    unsafe {
        pg_sys::GetUserIdAndSecContext(&mut user, &mut context);
        pg_sys::SetUserIdAndSecContext(owner, context | pg_sys::SECURITY_LOCAL_USERID_CHANGE as i32);
    }
    let _restore = Restore(user, context);
    crate::pg::schema::pinned(f)
}

pub fn to_pg(u: Option<uuid::Uuid>) -> Option<pgrx::Uuid> {
    u.map(|u| pgrx::Uuid::from_bytes(*u.as_bytes()))
}

/// The current user and session of a self-service call. In database-session mode a
/// session exists only with mfa_auth.database_sessions on: without it, `function` refuses
/// with 55000 rather than acting for a session that is not there (never a silent aal1).
pub fn me(function: &'static str) -> (pgrx::Uuid, Option<pgrx::Uuid>) {
    let me = identity();
    let Some(uid) = me.uid else { raise(MfaError::NoAuthenticatedUser) };
    if !me.gateway && me.session_id.is_none() {
        raise(MfaError::DatabaseSessionsOff(function));
    }
    (to_pg(Some(uid)).expect("Some"), to_pg(me.session_id))
}

/// auth.aal(): aal2 when the current session has an MFA claim of the current user, cached for
/// the statement and published for auth.aal()'s fast path (src/api/sessions.rs).
pub fn aal() -> pg_sys::Oid {
    if let Some(hit) = with_cache(|c| c.aal) {
        return hit;
    }
    let verified = last_mfa().is_some();
    let answer = with_statements(|st| if verified { st.aal2 } else { st.aal1 });
    let key = with_cache(|c| {
        c.aal = Some(answer);
        c.key
    });
    AAL_FAST.publish(key, answer.to_u32());
    answer
}

/// Whether `uid` has a verified factor, as the factors table's owner.
fn has_verified_factor(uid: uuid::Uuid) -> bool {
    let uid = to_pg(Some(uid)).expect("Some");
    with_statements(|st| {
        as_owner(st.owner, || {
            Spi::connect(|client| {
                let args: [DatumWithOid; 1] = [uid.into()];
                client.select(&st.enrolled, None, &args).or_raise().first().get::<bool>(1).or_raise().unwrap_or(false)
            })
        })
    })
}

/// Whether the current user has a verified factor, cached for the statement. No user
/// (gateway mode without a `sub` claim): false.
fn enrolled() -> bool {
    let (me, cached) = with_cache(|c| (c.identity, c.enrolled));
    if let Some(v) = cached {
        return v;
    }
    let v = me.uid.map(has_verified_factor).unwrap_or(false);
    with_cache(|c| c.enrolled = Some(v));
    v
}

fn level(enrolled: bool) -> pg_sys::Oid {
    with_statements(|st| if enrolled { st.aal2 } else { st.aal1 })
}

/// auth.aal_next(): aal2 once the current user has a verified factor, else aal1.
pub fn aal_next() -> pg_sys::Oid {
    level(enrolled())
}

/// auth.aal_next_of(user_id).
pub fn aal_next_of(user_id: pgrx::Uuid) -> pg_sys::Oid {
    level(has_verified_factor(uuid::Uuid::from_bytes(*user_id.as_bytes())))
}

/// auth.mfa_satisfied(): the session has MFA, or its user has no verified factor; published
/// for its fast path (1: false, 2: true).
pub fn mfa_satisfied() -> bool {
    let key = with_cache(|c| c.key);
    let answer = last_mfa().is_some() || !enrolled();
    SATISFIED_FAST.publish(key, 1 + u32::from(answer));
    answer
}

/// auth.session_amr() of the current session and user ('[]' without a session or user).
pub fn amr() -> pgrx::JsonB {
    session_lookup::<pgrx::JsonB>(identity(), |st| &st.amr).unwrap_or(pgrx::JsonB(serde_json::json!([])))
}

/// Whether the current session's newest MFA claim is younger than `max_age_us` (not
/// negative), measured at the start of the current statement.
pub fn verified_within(max_age_us: i128) -> bool {
    let Some(last) = last_mfa() else { return false };
    // SAFETY: a plain read of backend state.
    let now = i128::from(unsafe { raw::GetCurrentStatementStartTimestamp() });
    i128::from(last) > now - max_age_us
}

#[cfg(test)]
mod unit {
    use super::*;

    #[test]
    fn role_ids_are_stable_v5() {
        let a = role_uuid("alice");
        assert_eq!(a, role_uuid("alice"));
        assert_ne!(a, role_uuid("Alice"));
        assert_eq!(a.get_version_num(), 5);
    }

    #[test]
    fn role_lists() {
        assert!(role_listed("authenticator, web_user ,anon", "web_user"));
        assert!(!role_listed("authenticator,web_user", "web"));
        assert!(!role_listed("", ""));
        assert!(!role_listed(" , ", ""));
    }

    #[test]
    fn claims() {
        let s = "3fa85f64-5717-4562-b3fc-2c963f66afa6";
        let (sub, sid) = parse_claims(&format!(r#"{{"sub":"{s}","session_id":"{s}","aal":"aal2"}}"#));
        assert_eq!(sub.unwrap().to_string(), s);
        assert_eq!(sid.unwrap().to_string(), s);
        assert_eq!(parse_claims("not json"), (None, None));
        assert_eq!(parse_claims(r#"{"sub": 42}"#), (None, None));
    }
}
