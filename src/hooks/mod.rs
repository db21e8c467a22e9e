//! The policy hooks: `mfa_auth.verification_hook` and `mfa_auth.enrollment_hook`, each the
//! name of a function `(event jsonb) returns jsonb` that a superuser chose. The event and
//! what an answer decides are the core's (`mfa_auth_core::hooks`); this is the shell that
//! finds the function and calls it safely:
//!
//! - **Who sets it.** Both settings are superuser-only (PGC_SUSET): SET, SET LOCAL,
//!   PGOPTIONS, ALTER ROLE/DATABASE SET by any other role fail, a database owner included.
//! - **Which function.** The value must be schema-qualified; it is resolved to an OID, with
//!   the argument type pg_catalog.jsonb, when a superuser sets it in a transaction (SET,
//!   ALTER ROLE/DATABASE SET) and otherwise at its first use in the backend (postgresql.conf),
//!   and the OID is kept for that value for the backend's life: no search_path and no
//!   same-named function created later (in this or another schema) redirects it. A function
//!   dropped since fails every call (fail closed) until the setting is set again.
//! - **As whom.** The function runs as its owner, never as the SECURITY DEFINER function
//!   that calls it: the user id is switched to the owner with SECURITY_RESTRICTED_OPERATION
//!   (as Postgres runs index expressions during VACUUM), under `search_path = pg_catalog,
//!   pg_temp` unless the function sets its own. A hook owned by an ordinary role has that
//!   role's rights and no more: auth's tables and the key settings stay closed to it.
//! - **Failing closed.** The call runs in a subtransaction: an error in it (a raise, a
//!   statement_timeout cancel, a NULL or malformed answer, an unknown decision, a call of a
//!   verification or enrollment function from inside a hook) is caught, rolled back and
//!   reported as a [`Fault`]; the caller refuses the verification or enrollment (39000).

use std::cell::{Cell, RefCell};
use std::ffi::{CStr, CString};

use pgrx::guc::{GucContext, GucFlags, GucRegistry, GucSetting};
use pgrx::prelude::*;
use pgrx::IntoDatum;

pub use mfa_auth_core::hooks::{Decision, EnrollmentEvent, VerificationEvent};

static VERIFICATION_HOOK: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(None);
static ENROLLMENT_HOOK: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(None);

/// Which hook.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hook {
    Verification,
    Enrollment,
}

impl Hook {
    pub fn setting(self) -> &'static str {
        match self {
            Hook::Verification => "mfa_auth.verification_hook",
            Hook::Enrollment => "mfa_auth.enrollment_hook",
        }
    }
    fn value(self) -> Option<String> {
        let s = match self {
            Hook::Verification => &VERIFICATION_HOOK,
            Hook::Enrollment => &ENROLLMENT_HOOK,
        };
        s.get().map(|c| c.to_string_lossy().trim().to_owned()).filter(|v| !v.is_empty())
    }
}

/// Why a hook gave no decision (the verification or enrollment is refused).
#[derive(Debug, Clone)]
pub struct Fault {
    pub hook: Hook,
    /// What went wrong, cleaned and bounded (never the event).
    pub reason: String,
    /// The SQLSTATE the hook raised, when it raised.
    pub sqlstate: Option<String>,
}

thread_local! {
    /// Each value this backend resolved, with its function's OID (a few entries at most).
    static RESOLVED: RefCell<Vec<(String, pg_sys::Oid)>> = const { RefCell::new(Vec::new()) };
    /// A hook is running in this backend (a hook that verifies or enrolls is refused).
    static IN_HOOK: Cell<bool> = const { Cell::new(false) };
}

/// The function `schema.name(pg_catalog.jsonb)`, by the catalogs alone (no search_path, no
/// privilege check: a check hook must not raise). Only inside a transaction.
unsafe fn lookup(schema: &str, name: &str) -> Option<pg_sys::Oid> {
    let schema = CString::new(schema).ok()?;
    let name = CString::new(name).ok()?;
    // SAFETY: catalog reads in a transaction; missing_ok answers InvalidOid instead of raising.
    unsafe {
        let nsp = pg_sys::get_namespace_oid(schema.as_ptr(), true);
        if nsp == pg_sys::InvalidOid {
            return None;
        }
        let argtypes = [pg_sys::JSONBOID];
        let args = pg_sys::buildoidvector(argtypes.as_ptr(), 1);
        let oid = pg_sys::GetSysCacheOid(
            pg_sys::SysCacheIdentifier::PROCNAMEARGSNSP as i32,
            pg_sys::Anum_pg_proc_oid as i16,
            pg_sys::Datum::from(name.as_ptr()),
            pg_sys::Datum::from(args),
            pg_sys::Datum::from(nsp),
            pg_sys::Datum::from(0),
        );
        (oid != pg_sys::InvalidOid).then_some(oid)
    }
}

fn remember(value: &str, oid: pg_sys::Oid) {
    RESOLVED.with(|r| {
        let mut r = r.borrow_mut();
        r.retain(|(v, _)| v != value);
        if r.len() >= 16 {
            r.remove(0);
        }
        r.push((value.to_owned(), oid));
    });
}

fn check_detail(text: &str) {
    if let Ok(c) = CString::new(text) {
        // SAFETY: a check hook may set the detail to a palloc'd string.
        unsafe { pg_sys::GUC_check_errdetail_string = pg_sys::pstrdup(c.as_ptr()) };
    }
}

/// The check hook of both settings: the value must be `schema.function`; inside a
/// transaction (SET, ALTER ROLE/DATABASE SET) the function must exist, and its OID is what
/// this value means in this backend from then on.
unsafe extern "C-unwind" fn check_hook_name(
    newval: *mut *mut core::ffi::c_char,
    _extra: *mut *mut core::ffi::c_void,
    source: pg_sys::GucSource::Type,
) -> bool {
    // SAFETY: Postgres passes a valid pointer to the proposed value (which may be NULL).
    let newval = unsafe { *newval };
    crate::pg::guard::hook_body(false, || {
        // SAFETY: NULL or a C string.
        let Some(value) = (unsafe { newval.as_ref().map(|p| CStr::from_ptr(p).to_string_lossy().trim().to_owned()) })
        else {
            return true;
        };
        if value.is_empty() {
            return true;
        }
        let (schema, name) = match mfa_auth_core::hooks::parse_name(&value) {
            Ok(p) => p,
            Err(why) => {
                check_detail(&format!("{why}, e.g. hooks.verify_attempt"));
                return false;
            }
        };
        // SAFETY: plain reads of backend state.
        let in_xact = unsafe { pg_sys::IsTransactionState() && pg_sys::MyDatabaseId != pg_sys::InvalidOid };
        if !in_xact {
            return true; // postgresql.conf, the postmaster: resolved at first use
        }
        match unsafe { lookup(&schema, &name) } {
            Some(oid) => {
                remember(&value, oid);
                true
            }
            // ALTER ROLE/DATABASE SET may name a function of another database.
            None if source == pg_sys::GucSource::PGC_S_TEST => true,
            None => {
                check_detail(&format!(
                    "function {}({}) does not exist in this database",
                    quote(&schema, &name),
                    "pg_catalog.jsonb"
                ));
                false
            }
        }
    })
}

fn quote(schema: &str, name: &str) -> String {
    let q = |s: &str| format!("\"{}\"", s.replace('"', "\"\""));
    format!("{}.{}", q(schema), q(name))
}

pub fn init() {
    // SAFETY: the check hook cannot raise (hook_body; lookups with missing_ok).
    unsafe {
        GucRegistry::define_string_guc_with_hooks(
            c"mfa_auth.verification_hook",
            c"Function (event jsonb) returns jsonb called for every verification, after the response is checked and before anything is recorded.",
            c"Schema-qualified. Answers {\"decision\": \"continue\"} or {\"decision\": \"reject\", \"message\": ...}; reject refuses the verification (28000) and signs the user out. Runs as the function's owner. Superuser-only.",
            &VERIFICATION_HOOK,
            GucContext::Suset,
            GucFlags::default(),
            Some(check_hook_name),
            None,
            None,
        );
        GucRegistry::define_string_guc_with_hooks(
            c"mfa_auth.enrollment_hook",
            c"Function (event jsonb) returns jsonb called before any factor is created and before recovery codes are generated.",
            c"Schema-qualified. Answers {\"decision\": \"continue\"} or {\"decision\": \"reject\", \"message\": ...}; reject refuses the enrollment (42501). Runs as the function's owner. Superuser-only.",
            &ENROLLMENT_HOOK,
            GucContext::Suset,
            GucFlags::default(),
            Some(check_hook_name),
            None,
            None,
        );
    }
}

/// Whether a hook is set (cheap: no lookup).
pub fn is_set(hook: Hook) -> bool {
    hook.value().is_some()
}

/// The hook's function: its OID and owner, checked to be a plain function
/// `(jsonb) returns jsonb` that still exists.
fn function(hook: Hook, value: &str) -> Result<(pg_sys::Oid, pg_sys::Oid), String> {
    let cached = RESOLVED.with(|r| r.borrow().iter().find(|(v, _)| v == value).map(|(_, o)| *o));
    let oid = match cached {
        Some(o) => o,
        None => {
            let (schema, name) = mfa_auth_core::hooks::parse_name(value).map_err(str::to_owned)?;
            // SAFETY: called from a SQL function: inside a transaction.
            let oid = unsafe { lookup(&schema, &name) }
                .ok_or_else(|| format!("function {}(pg_catalog.jsonb) does not exist", quote(&schema, &name)))?;
            remember(value, oid);
            oid
        }
    };
    // SAFETY: a syscache look-up by OID, released below; the struct is read while pinned.
    unsafe {
        let tuple = pg_sys::SearchSysCache1(pg_sys::SysCacheIdentifier::PROCOID as i32, pg_sys::Datum::from(oid));
        if tuple.is_null() {
            return Err(format!(
                "its function (OID {}) no longer exists: a superuser must set {} again",
                oid.to_u32(),
                hook.setting()
            ));
        }
        let p = &*pg_sys::heap_tuple_get_struct::<pg_sys::FormData_pg_proc>(tuple);
        let ok = p.prorettype == pg_sys::JSONBOID && !p.proretset && p.prokind as u8 == b'f';
        let owner = p.proowner;
        pg_sys::ReleaseSysCache(tuple);
        if !ok {
            return Err(
                "its function must be a plain function returning jsonb (not a set, procedure or aggregate)".into()
            );
        }
        Ok((oid, owner))
    }
}

/// The server log's line for a fault (the caller gets the error; the trail gets hook_failed).
pub fn log_fault(f: &Fault) {
    match &f.sqlstate {
        Some(code) => {
            log!("mfa_auth: {} failed, refused (fail closed): {} (SQLSTATE {code})", f.hook.setting(), f.reason)
        }
        None => log!("mfa_auth: {} failed, refused (fail closed): {}", f.hook.setting(), f.reason),
    }
}

/// Calls the enrollment hook (when set) before a factor of `factor_type` is created for
/// `user_id`, or recovery codes generated; raises 42501 on reject and 39000 on a fault, each
/// recorded first. `session_id`: the self-service caller's session (None for service calls).
pub fn before_enrollment(
    user_id: pgrx::Uuid,
    factor_type: mfa_auth_core::factor_type::FactorType,
    friendly_name: Option<&str>,
    phone: Option<&str>,
    session_id: Option<pgrx::Uuid>,
) {
    use crate::audit::{self, EntryExt, Event, Outcome};
    use crate::pg::error::{raise, MfaError};
    if !is_set(Hook::Enrollment) {
        return;
    }
    let aal = session_id.map(|s| {
        let aal2 = Spi::get_one_with_args::<bool>(
            "SELECT EXISTS (SELECT 1 FROM auth.mfa_verified_claims v
                             WHERE v.session_id OPERATOR(pg_catalog.=) $1 AND v.user_id OPERATOR(pg_catalog.=) $2)",
            &[s.into(), user_id.into()],
        )
        .ok()
        .flatten()
        .unwrap_or(false);
        if aal2 {
            "aal2"
        } else {
            "aal1"
        }
    });
    let to_core = |u: pgrx::Uuid| uuid::Uuid::from_bytes(*u.as_bytes());
    let event = EnrollmentEvent {
        user_id: to_core(user_id),
        factor_type: factor_type.sql_name(),
        friendly_name,
        phone,
        session_id: session_id.map(to_core),
        aal,
    };
    let entry = |e: Event, o: Outcome| {
        audit::event(e)
            .user(Some(audit::bytes(user_id)))
            .factor_type(factor_type.sql_name())
            .outcome(o)
            .session_id(session_id)
    };
    match call(Hook::Enrollment, event.to_json()) {
        Ok(None | Some(Decision::Continue)) => {}
        Ok(Some(Decision::Reject(message))) => {
            audit::now(entry(Event::EnrollmentRejected, Outcome::Rejected));
            raise(MfaError::EnrollmentRejected(message));
        }
        Err(fault) => {
            audit::now(entry(Event::HookFailed, Outcome::Error));
            log_fault(&fault);
            raise(MfaError::HookFailed {
                setting: fault.hook.setting(),
                reason: fault.reason,
                sqlstate: fault.sqlstate,
            });
        }
    }
}

/// Resets [`IN_HOOK`] however the call ends.
struct Running;
impl Drop for Running {
    fn drop(&mut self) {
        IN_HOOK.with(|h| h.set(false));
    }
}

/// Calls the hook (when one is set) with `event`: Ok(None) when none is set.
pub fn call(hook: Hook, event: serde_json::Value) -> Result<Option<Decision>, Fault> {
    let Some(value) = hook.value() else { return Ok(None) };
    let fault = |reason: String, sqlstate: Option<String>| Fault {
        hook,
        reason: mfa_auth_core::hooks::clean_fault(&reason),
        sqlstate,
    };
    if IN_HOOK.with(Cell::get) {
        return Err(fault("a hook cannot verify or enroll factors (called from inside a hook)".into(), None));
    }
    let (oid, owner) = function(hook, &value).map_err(|r| fault(r, None))?;
    let answer = in_subtransaction(oid, owner, event).map_err(|(r, s)| fault(r, s))?;
    let Some(answer) = answer else {
        return Err(fault("it returned NULL".into(), None));
    };
    mfa_auth_core::hooks::decide_text(&answer).map(Some).map_err(|f| fault(f.to_string(), None))
}

/// Runs the function `oid` as `owner` in a subtransaction (rolled back on error, as a
/// PL/pgSQL exception block does), returning its answer's text.
fn in_subtransaction(
    oid: pg_sys::Oid,
    owner: pg_sys::Oid,
    event: serde_json::Value,
) -> Result<Option<String>, (String, Option<String>)> {
    // SAFETY: the sequence of PL/pgSQL's exec_stmt_block around an exception block: the
    // memory context and resource owner are put back after the subtransaction ends either way.
    unsafe {
        let old_context = pg_sys::CurrentMemoryContext;
        let old_owner = pg_sys::CurrentResourceOwner;
        pg_sys::BeginInternalSubTransaction(std::ptr::null());
        pg_sys::MemoryContextSwitchTo(old_context);
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            IN_HOOK.with(|h| h.set(true));
            let _running = Running;
            let (mut prev_user, mut prev_sec) = (pg_sys::InvalidOid, 0);
            pg_sys::GetUserIdAndSecContext(&mut prev_user, &mut prev_sec);
            pg_sys::SetUserIdAndSecContext(
                owner,
                prev_sec | pg_sys::SECURITY_LOCAL_USERID_CHANGE as i32 | pg_sys::SECURITY_RESTRICTED_OPERATION as i32,
            );
            let level = pg_sys::NewGUCNestLevel();
            pg_sys::set_config_option(
                c"search_path".as_ptr(),
                c"pg_catalog, pg_temp".as_ptr(),
                pg_sys::GucContext::PGC_USERSET,
                pg_sys::GucSource::PGC_S_SESSION,
                pg_sys::GucAction::GUC_ACTION_SAVE,
                true,
                0,
                false,
            );
            let arg = pgrx::JsonB(event).into_datum().expect("jsonb datum");
            let (out, isnull) = call_function(oid, arg);
            let text = if isnull {
                None
            } else {
                pgrx::JsonB::from_polymorphic_datum(out, false, pg_sys::JSONBOID).map(|j| j.0.to_string())
            };
            pg_sys::AtEOXact_GUC(true, level);
            pg_sys::SetUserIdAndSecContext(prev_user, prev_sec);
            text
        }));
        match result {
            Ok(text) => {
                pg_sys::ReleaseCurrentSubTransaction();
                pg_sys::MemoryContextSwitchTo(old_context);
                pg_sys::CurrentResourceOwner = old_owner;
                Ok(text)
            }
            Err(panic) => {
                pg_sys::MemoryContextSwitchTo(old_context);
                // The subtransaction's abort puts back the user id, the security context and
                // the GUC nest level it started with.
                pg_sys::RollbackAndReleaseCurrentSubTransaction();
                pg_sys::MemoryContextSwitchTo(old_context);
                pg_sys::CurrentResourceOwner = old_owner;
                let (reason, sqlstate) = describe(panic);
                Err((reason, sqlstate))
            }
        }
    }
}

/// Calls `oid` with one non-NULL argument and returns its result and whether it is NULL
/// (what OidFunctionCall1Coll does, without raising for a NULL result).
unsafe fn call_function(oid: pg_sys::Oid, arg: pg_sys::Datum) -> (pg_sys::Datum, bool) {
    // SAFETY: fmgr_info fills the FmgrInfo (raising for a missing function); the call info is
    // sized for one argument, as LOCAL_FCINFO(fcinfo, 1) is, and zeroed before use.
    unsafe {
        let flinfo = pg_sys::palloc0(std::mem::size_of::<pg_sys::FmgrInfo>()) as *mut pg_sys::FmgrInfo;
        pg_sys::fmgr_info(oid, flinfo);
        let size =
            std::mem::size_of::<pg_sys::FunctionCallInfoBaseData>() + std::mem::size_of::<pg_sys::NullableDatum>();
        let fc = pg_sys::palloc0(size) as *mut pg_sys::FunctionCallInfoBaseData;
        (*fc).flinfo = flinfo;
        (*fc).nargs = 1;
        (*fc).fncollation = pg_sys::InvalidOid;
        (*fc).args.as_mut_slice(1)[0] = pg_sys::NullableDatum { value: arg, isnull: false };
        let f = (*flinfo).fn_addr.expect("fmgr_info sets fn_addr");
        // Through pgrx's boundary: a Postgres error in the function (a longjmp) becomes a Rust
        // panic here, unwinding to the subtransaction's catch instead of jumping over Rust frames.
        let out = pg_sys::submodules::ffi::pg_guard_ffi_boundary(|| f(fc));
        (out, (*fc).isnull)
    }
}

/// What a caught error was: its message and SQLSTATE.
fn describe(panic: Box<dyn std::any::Any + Send>) -> (String, Option<String>) {
    use pgrx::pg_sys::panic::CaughtError;
    match panic.downcast::<CaughtError>() {
        Ok(e) => match *e {
            CaughtError::PostgresError(r) | CaughtError::ErrorReport(r) | CaughtError::RustPanic { ereport: r, .. } => {
                let code = r.sql_error_code();
                (format!("it raised: {}", r.message()), Some(code_text(code)))
            }
        },
        Err(other) => {
            let msg = other
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| other.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                .unwrap_or_else(|| "a panic".into());
            (format!("it failed: {msg}"), None)
        }
    }
}

fn code_text(code: pgrx::PgSqlErrorCode) -> String {
    // MAKE_SQLSTATE packs 5 characters, 6 bits each, from '0'.
    let mut v = code as i32;
    let mut s = String::with_capacity(5);
    for _ in 0..5 {
        s.push(char::from(((v & 0x3f) as u8) + b'0'));
        v >>= 6;
    }
    s
}
