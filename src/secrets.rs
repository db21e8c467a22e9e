//! TOTP secrets at rest: the pgrx shell around [`crate::otp::sealed`].
//!
//! Master keys come from the superuser-only setting `mfa_auth.encryption_keys`
//! (`key_id:base64-of-32-bytes`, comma-separated, the first one current). It is hidden
//! from ordinary roles, from SHOW ALL and from pg_settings for them, and no message of
//! this extension ever quotes it. Without a key the extension stores plaintext secrets
//! and says so once per session with a WARNING at enrollment.

use std::cell::RefCell;
use std::ffi::CString;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};

use pgrx::datum::DatumWithOid;
use pgrx::pg_sys::panic::ErrorReport;
use pgrx::guc::{GucContext, GucFlags, GucRegistry, GucSetting};
use pgrx::prelude::*;

use crate::error::{raise, MfaError, OrRaise};
use crate::otp::sealed::{self, Keyring};
use crate::spi_util::{run, Stmt};

pub static ENCRYPTION_KEYS: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(None);

pub fn init_guc() {
    GucRegistry::define_string_guc(
        c"mfa_auth.encryption_keys",
        c"Master keys that encrypt TOTP secrets at rest: key_id:base64-of-32-bytes, comma-separated, current key first.",
        c"Older keys stay listed until auth.rotate_secrets() has re-encrypted every secret with the current one.",
        &ENCRYPTION_KEYS,
        GucContext::Suset,
        GucFlags::SUPERUSER_ONLY | GucFlags::NO_SHOW_ALL,
    );
}

thread_local! {
    /// The parsed keyring and the setting text it came from.
    static CACHE: RefCell<Option<(CString, Rc<Keyring>)>> = const { RefCell::new(None) };
}

static WARNED: AtomicBool = AtomicBool::new(false);

/// The configured keyring (empty when the setting is unset or blank).
pub fn keyring() -> Rc<Keyring> {
    let raw = ENCRYPTION_KEYS.get().unwrap_or_default();
    CACHE.with(|c| {
        let mut c = c.borrow_mut();
        if let Some((text, ring)) = c.as_ref() {
            if *text == raw {
                return Rc::clone(ring);
            }
        }
        let ring = Rc::new(Keyring::parse(&raw.to_string_lossy()).or_raise());
        *c = Some((raw, Rc::clone(&ring)));
        ring
    })
}

/// What to store for a new secret of `factor`: sealed with the current key, or the
/// plaintext (with a one-time WARNING) when no key is configured.
pub fn seal_new(factor: &pgrx::Uuid, secret: &str) -> String {
    let ring = keyring();
    if ring.is_empty() {
        if !WARNED.swap(true, Ordering::Relaxed) {
            ErrorReport::new(
                PgSqlErrorCode::ERRCODE_WARNING,
                "mfa_auth.encryption_keys is not set: TOTP secrets are stored unencrypted",
                "mfa_auth",
            )
            .set_hint(
                "Set mfa_auth.encryption_keys (superuser, postgresql.conf) to key_id:base64-of-32-bytes; existing secrets are encrypted on their next use or by auth.rotate_secrets().",
            )
            .report(PgLogLevel::WARNING);
        }
        return secret.to_owned();
    }
    sealed::seal_random(&ring, factor.as_bytes(), secret).or_raise()
}

/// The plaintext of a stored secret of `factor`, and, when it should be re-sealed with
/// the current key (plaintext while a key is set, or an older key), the new value.
pub fn open_stored(factor: &pgrx::Uuid, stored: &str) -> (String, Option<String>) {
    let ring = keyring();
    match sealed::open(&ring, factor.as_bytes(), stored) {
        Ok(o) if o.current => (o.secret, None),
        Ok(o) => {
            let resealed = sealed::seal_random(&ring, factor.as_bytes(), &o.secret).or_raise();
            (o.secret, Some(resealed))
        }
        Err(e) => raise(MfaError::SecretUnreadable { factor: factor.to_string(), reason: e.to_string() }),
    }
}

const NOT_CURRENT: Stmt = Stmt {
    sql: "SELECT id, secret FROM auth.mfa_factors
           WHERE secret IS NOT NULL AND NOT pg_catalog.starts_with(secret, $1)
           ORDER BY id LIMIT $2 FOR UPDATE",
    args: &[pg_sys::TEXTOID, pg_sys::INT4OID],
};

const RESEAL: Stmt = Stmt {
    sql: "UPDATE auth.mfa_factors SET secret = COALESCE($2, secret) WHERE id = $1",
    args: &[pg_sys::UUIDOID, pg_sys::TEXTOID],
};

/// Re-encrypts every stored TOTP secret that is not sealed with the current key
/// (plaintext ones included), at most `max_rows` of them; returns how many. Run it after
/// putting a new key first in mfa_auth.encryption_keys; once it returns 0 the old key can
/// be removed.
#[pg_extern(volatile, security_definer)]
#[search_path(pg_catalog, pg_temp)]
fn rotate_secrets(max_rows: default!(Option<i32>, "NULL")) -> i64 {
    if matches!(max_rows, Some(n) if n < 1) {
        raise(MfaError::invalid("max_rows", "must be at least 1 (or NULL for all)"));
    }
    let ring = keyring();
    let Some(current) = ring.current() else { raise(MfaError::NoEncryptionKey) };
    let prefix = format!("{}{current}:", sealed::PREFIX);
    Spi::connect_mut(|client| {
        let rows = run(client, &NOT_CURRENT, &[prefix.as_str().into(), max_rows.unwrap_or(i32::MAX).into()]);
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
        todo.len() as i64
    })
}
