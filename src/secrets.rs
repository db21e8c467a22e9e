//! TOTP secrets at rest, and the server keys derived from the master keys: the pgrx shell
//! around [`mfa_auth_core::sealing`].
//!
//! Master keys (`key_id:base64-of-32-bytes`, the first one current) come from
//! - `mfa_auth.encryption_keys_file` (PGC_SIGHUP, superuser-only): the path of a file of one
//!   key per line, which must belong to the server's OS user and be unreadable by group and
//!   others (as Postgres requires of `ssl_key_file`). A reload re-reads it; only the path
//!   ever appears in a setting, so only the path can reach the server log or a monitoring
//!   role. A file that cannot be used is an error wherever a key is needed (no key in force,
//!   never a silent fallback to plaintext), and a WARNING in the server log at reload.
//! - `mfa_auth.encryption_keys` (deprecated, kept so 0.1.0 secrets still open): the keys in
//!   the setting's value, which Postgres writes to the log when a reload changes it. Its
//!   keys follow the file's. It is left out of pg_settings and SHOW ALL; SHOW of it is for
//!   superusers and members of `pg_read_all_settings`, who see `(hidden)` when it is set;
//!   `ALTER ROLE/DATABASE ... SET` (which would store it in
//!   pg_db_role_setting and pg_dumpall output) is refused.
//!
//! No message of this extension ever quotes a key. Without any key the extension stores
//! plaintext secrets and says so once per session with a WARNING at enrollment.

use std::cell::RefCell;
use std::ffi::{CStr, CString};
use std::os::unix::fs::MetadataExt;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use pgrx::datum::DatumWithOid;
use pgrx::guc::{GucContext, GucFlags, GucRegistry, GucSetting};
use pgrx::pg_sys::panic::ErrorReport;
use pgrx::prelude::*;

use crate::pg::error::{raise, MfaError, OrRaise};
use crate::pg::spi::{run, Stmt};
use mfa_auth_core::sealing::{self, Keyring};

/// The master keys' settings (their hooks are below).
static ENCRYPTION_KEYS_FILE: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(None);
static ENCRYPTION_KEYS: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(None);

/// Registers the master keys' settings with their check, assign and show hooks.
pub fn init() {
    // SAFETY: the hooks cannot panic; they only read their arguments and settings.
    unsafe {
        GucRegistry::define_string_guc_with_hooks(
            c"mfa_auth.encryption_keys",
            c"Deprecated: master keys that encrypt TOTP secrets at rest, in the setting itself (use mfa_auth.encryption_keys_file).",
            c"key_id:base64-of-32-bytes, comma-separated, current key first. Its value reaches the server log when a reload changes it.",
            &ENCRYPTION_KEYS,
            GucContext::Suset,
            GucFlags::SUPERUSER_ONLY | GucFlags::NO_SHOW_ALL,
            Some(check_keys),
            None,
            Some(show_keys),
        );
        GucRegistry::define_string_guc_with_hooks(
            c"mfa_auth.encryption_keys_file",
            c"File of the master keys that encrypt TOTP secrets and key phone-code hashes.",
            c"One key_id:base64-of-32-bytes per line, current key first; owned by the server's OS user, mode 0600 or stricter. Re-read on reload.",
            &ENCRYPTION_KEYS_FILE,
            GucContext::Sighup,
            GucFlags::SUPERUSER_ONLY,
            Some(check_key_file),
            Some(assign_key_file),
            None,
        );
    }
}

/// Bumped by every (re)load of mfa_auth.encryption_keys_file in this process: the next use
/// of a key re-reads the file.
static KEY_FILE_GENERATION: AtomicU64 = AtomicU64::new(0);

const DEPRECATED: &str = "mfa_auth.encryption_keys is deprecated: its value (the master keys) is written to the server log when a reload changes it, and members of pg_read_all_settings could read it in 0.1.0";
const DEPRECATED_HINT: &str =
    "Move the keys to a file readable only by the server's OS user and set mfa_auth.encryption_keys_file to its path.";

/// Where a setting's value comes from, by which it may not come: ALTER ROLE/DATABASE SET
/// (validated as PGC_S_TEST, applied as the others) would store a key in the catalogs.
fn from_catalog(source: pg_sys::GucSource::Type) -> bool {
    use pg_sys::GucSource::*;
    matches!(source, PGC_S_TEST | PGC_S_GLOBAL | PGC_S_DATABASE | PGC_S_USER | PGC_S_DATABASE_USER)
}

unsafe fn check_detail(text: &CStr) {
    // SAFETY: a check hook may set the detail to a palloc'd string.
    unsafe { pg_sys::GUC_check_errdetail_string = pg_sys::pstrdup(text.as_ptr()) };
}

pub(crate) unsafe extern "C-unwind" fn check_keys(
    newval: *mut *mut core::ffi::c_char,
    _extra: *mut *mut core::ffi::c_void,
    source: pg_sys::GucSource::Type,
) -> bool {
    // SAFETY: Postgres passes a valid pointer to the proposed value (which may be NULL).
    let newval = unsafe { *newval };
    crate::pg::guard::hook_body(false, || unsafe { check_keys_body(newval, source) })
}

unsafe fn check_keys_body(newval: *mut core::ffi::c_char, source: pg_sys::GucSource::Type) -> bool {
    // SAFETY: the proposed value is NULL or a C string.
    let value = unsafe { newval.as_ref().map(|p| CStr::from_ptr(p)) };
    let set = value.map(|v| !v.to_bytes().iter().all(u8::is_ascii_whitespace)).unwrap_or(false);
    if set && from_catalog(source) {
        unsafe {
            check_detail(c"mfa_auth.encryption_keys cannot be set per role or database (the keys would be stored in pg_db_role_setting): use mfa_auth.encryption_keys_file.")
        };
        return false;
    }
    // At load in the postmaster (server start, reload): say it is deprecated, once, in the log.
    if set && source == pg_sys::GucSource::PGC_S_FILE && unsafe { !pg_sys::IsUnderPostmaster } {
        ErrorReport::new(PgSqlErrorCode::ERRCODE_WARNING, DEPRECATED, "mfa_auth")
            .set_hint(DEPRECATED_HINT)
            .report(PgLogLevel::WARNING);
    }
    true
}

/// SHOW / pg_settings / current_setting() of the deprecated setting: the value for a
/// superuser (who can read the configuration files anyway), `(hidden)` for everyone else,
/// members of pg_read_all_settings included; never NULL (see below).
pub(crate) unsafe extern "C-unwind" fn show_keys() -> *const core::ffi::c_char {
    crate::pg::guard::hook_body(c"(hidden)".as_ptr(), || unsafe { show_keys_body() })
}

unsafe fn show_keys_body() -> *const core::ffi::c_char {
    // SAFETY: the setting's current C string (or NULL), owned by the GUC machinery.
    let value: *const core::ffi::c_char = unsafe { *ENCRYPTION_KEYS.as_ptr() };
    // SAFETY: plain reads of backend state; superuser() only inside a transaction.
    let superuser = unsafe { pg_sys::IsTransactionState() && pg_sys::superuser() };
    // A show hook must return a string: Postgres copies it (pg_settings, SHOW ALL) and
    // would dereference NULL. An unset setting shows as the empty string, as Postgres's own
    // string settings do.
    if value.is_null() {
        c"".as_ptr()
    } else if superuser {
        value
    } else if unsafe { *value } == 0 {
        c"".as_ptr()
    } else {
        c"(hidden)".as_ptr()
    }
}

pub(crate) unsafe extern "C-unwind" fn check_key_file(
    newval: *mut *mut core::ffi::c_char,
    _extra: *mut *mut core::ffi::c_void,
    source: pg_sys::GucSource::Type,
) -> bool {
    // SAFETY: Postgres passes a valid pointer to the proposed value (which may be NULL).
    let newval = unsafe { *newval };
    // Accepting is the safe answer: the file is checked again wherever a key is used.
    crate::pg::guard::hook_body(true, || unsafe { check_key_file_body(newval, source) })
}

unsafe fn check_key_file_body(newval: *mut core::ffi::c_char, source: pg_sys::GucSource::Type) -> bool {
    // At load in the postmaster: a file that cannot be used is reported in the log at once
    // (backends then refuse every use of a key with the same reason).
    if unsafe { !pg_sys::IsUnderPostmaster } && source != pg_sys::GucSource::PGC_S_DEFAULT {
        let path = unsafe { newval.as_ref().map(|p| CStr::from_ptr(p).to_string_lossy().into_owned()) };
        if let Some(path) = path.filter(|p| !p.is_empty()) {
            if let Err(reason) = read_key_file(&path) {
                ErrorReport::new(
                    PgSqlErrorCode::ERRCODE_CONFIG_FILE_ERROR,
                    format!(
                        "mfa_auth.encryption_keys_file \"{path}\" cannot be used: {reason}; no master key is in force"
                    ),
                    "mfa_auth",
                )
                .report(PgLogLevel::WARNING);
            }
        }
    }
    true
}

pub(crate) unsafe extern "C-unwind" fn assign_key_file(_new: *const core::ffi::c_char, _extra: *mut core::ffi::c_void) {
    // An atomic add: cannot fail, allocate or raise.
    KEY_FILE_GENERATION.fetch_add(1, Ordering::Relaxed);
}

/// Reads and checks a key file: owned by this process's OS user, no group or other
/// permission bits, well-formed. The reason names the problem, never a key.
fn read_key_file(path: &str) -> Result<Keyring, String> {
    let meta = std::fs::metadata(path).map_err(|e| format!("cannot read it: {e}"))?;
    if !meta.is_file() {
        return Err("it is not a regular file".into());
    }
    // SAFETY: geteuid cannot fail.
    if meta.uid() != unsafe { libc::geteuid() } {
        return Err("it must be owned by the database server's operating-system user".into());
    }
    if meta.mode() & 0o077 != 0 {
        return Err(format!(
            "it is group- or world-accessible (mode {:04o}): it must be u=rw (0600) or less",
            meta.mode() & 0o7777
        ));
    }
    if meta.len() > 1 << 20 {
        return Err("it is larger than 1 MB".into());
    }
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read it: {e}"))?;
    Keyring::parse_file(&text).map_err(|e| format!("line {e}"))
}

/// What a keyring is built from: the legacy setting's text, the key file's path, and the
/// file's load generation.
type KeySources = (CString, CString, u64);

thread_local! {
    /// The keyring and what it was built from: the legacy setting's text, the key file's
    /// path and its load generation.
    static CACHE: RefCell<Option<(KeySources, Rc<Keyring>)>> = const { RefCell::new(None) };
}

static WARNED: AtomicBool = AtomicBool::new(false);

/// The configured keyring: the key file's keys, then the legacy setting's (empty when
/// neither is set). Raises 55000 when the key file is set but cannot be used.
pub fn keyring() -> Rc<Keyring> {
    let legacy = ENCRYPTION_KEYS.get().unwrap_or_default();
    let path = ENCRYPTION_KEYS_FILE.get().unwrap_or_default();
    let source = (legacy, path, KEY_FILE_GENERATION.load(Ordering::Relaxed));
    CACHE.with(|c| {
        let mut c = c.borrow_mut();
        if let Some((from, ring)) = c.as_ref() {
            if *from == source {
                return Rc::clone(ring);
            }
        }
        let legacy_ring = Keyring::parse(&source.0.to_string_lossy()).or_raise();
        let path = source.1.to_string_lossy().into_owned();
        let ring = if path.is_empty() {
            legacy_ring
        } else {
            match read_key_file(&path) {
                Ok(file) => file.followed_by(&legacy_ring),
                Err(reason) => raise(MfaError::KeyFileUnusable { path, reason }),
            }
        };
        let ring = Rc::new(ring);
        *c = Some((source, Rc::clone(&ring)));
        ring
    })
}

/// Purpose of the key that keys phone-code hashes (HKDF info).
const PHONE_CODE_KEY: &[u8] = b"mfa_auth phone code hash";

/// The current key id and server key for new phone-code hashes (None without master keys).
pub fn phone_code_key() -> Option<(String, [u8; 32])> {
    let ring = keyring();
    ring.derived(None, PHONE_CODE_KEY).map(|(id, key)| (id.to_owned(), key))
}

/// The server key of master key `id` for checking a keyed phone-code hash; a key that is
/// no longer configured is an error (55000), never a wrong code.
pub fn phone_code_key_of(id: &str) -> [u8; 32] {
    match keyring().derived(Some(id), PHONE_CODE_KEY) {
        Some((_, key)) => key,
        None => raise(MfaError::PhoneKeyMissing(id.to_owned())),
    }
}

/// Purpose of the key that keys recovery-code hashes (HKDF info).
const RECOVERY_CODE_KEY: &[u8] = b"mfa_auth recovery code hash";

/// The server keys for recovery-code hashes, one per configured master key, the current one
/// first (empty without master keys): a new code is hashed with the first, and a code is
/// looked up under each, so a rotation keeps old codes working while the old key is listed.
pub fn recovery_code_keys() -> Vec<(String, [u8; 32])> {
    let ring = keyring();
    ring.ids()
        .filter_map(|id| ring.derived(Some(id), RECOVERY_CODE_KEY).map(|(id, key)| (id.to_owned(), key)))
        .collect()
}

/// What to store for a new secret of `factor`: sealed with the current key, or the
/// plaintext (with a one-time WARNING) when no key is configured.
pub fn seal_new(factor: &pgrx::Uuid, secret: &str) -> String {
    let ring = keyring();
    if ring.is_empty() {
        if !WARNED.swap(true, Ordering::Relaxed) {
            ErrorReport::new(
                PgSqlErrorCode::ERRCODE_WARNING,
                "no master key is configured: TOTP secrets are stored unencrypted",
                "mfa_auth",
            )
            .set_hint(
                "Set mfa_auth.encryption_keys_file (postgresql.conf, then reload) to a file of key_id:base64-of-32-bytes lines readable only by the server; existing secrets are encrypted on their next use or by CALL auth.rotate_secrets_batched().",
            )
            .report(PgLogLevel::WARNING);
        }
        return secret.to_owned();
    }
    sealing::seal_random(&ring, factor.as_bytes(), secret).or_raise()
}

/// The plaintext of a stored secret of `factor`, and, when it should be re-sealed with
/// the current key (plaintext while a key is set, or an older key), the new value.
pub fn open_stored(factor: &pgrx::Uuid, stored: &str) -> (String, Option<String>) {
    let ring = keyring();
    match sealing::open(&ring, factor.as_bytes(), stored) {
        Ok(o) if o.current => (o.secret, None),
        Ok(o) => {
            let resealed = sealing::seal_random(&ring, factor.as_bytes(), &o.secret).or_raise();
            (o.secret, Some(resealed))
        }
        Err(e) => raise(MfaError::SecretUnreadable { factor: factor.to_string(), reason: e.to_string() }),
    }
}

/// Rows a verification holds are skipped: it re-seals them itself.
const NOT_CURRENT: Stmt = Stmt {
    sql: "SELECT id, secret FROM auth.mfa_factors
           WHERE secret IS NOT NULL AND NOT pg_catalog.starts_with(secret, $1)
           ORDER BY id LIMIT $2 FOR UPDATE SKIP LOCKED",
    args: &[pg_sys::TEXTOID, pg_sys::INT4OID],
};

const RESEAL: Stmt = Stmt {
    sql: "UPDATE auth.mfa_factors SET secret = COALESCE($2, secret) WHERE id = $1",
    args: &[pg_sys::UUIDOID, pg_sys::TEXTOID],
};

/// Rows auth.rotate_secrets(NULL) re-seals in one call (one transaction's row locks).
const ROTATE_BATCH: i32 = 1000;

/// auth.rotate_secrets(max_rows): re-seals at most `max_rows` (None: [`ROTATE_BATCH`]) stored
/// secrets that are not sealed with the current key; how many.
pub fn rotate(max_rows: Option<i32>) -> i64 {
    if matches!(max_rows, Some(n) if n < 1) {
        raise(MfaError::invalid("max_rows", format!("must be at least 1 (or NULL for {ROTATE_BATCH})")));
    }
    let ring = keyring();
    let Some(current) = ring.current() else { raise(MfaError::NoEncryptionKey) };
    let prefix = format!("{}{current}:", sealing::PREFIX);
    Spi::connect_mut(|client| {
        let rows = run(client, &NOT_CURRENT, &[prefix.as_str().into(), max_rows.unwrap_or(ROTATE_BATCH).into()]);
        let todo: Vec<(pgrx::Uuid, String)> = rows
            .map(|r| {
                let id: pgrx::Uuid = r.get(1).or_raise().expect("id");
                let secret: String = r.get(2).or_raise().expect("secret IS NOT NULL");
                (id, secret)
            })
            .collect();
        for (id, stored) in &todo {
            // Every row selected is plaintext or under another key: opening it re-seals it.
            let (_, resealed) = open_stored(id, stored);
            let args: [DatumWithOid; 2] = [(*id).into(), resealed.into()];
            run(client, &RESEAL, &args);
        }
        let n = todo.len() as i64;
        // (A call with nothing left to re-seal, the last step of rotate_secrets_batched, is not an event.)
        if n > 0 {
            crate::audit::at_commit(
                crate::audit::event(crate::audit::Event::SecretsResealed)
                    .traits(&crate::audit::Traits::new().int("resealed", n).label("key_id", current)),
            );
        }
        n
    })
}
