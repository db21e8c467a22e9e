//! Authentication Method Reference claims of sessions.

use pgrx::datum::DatumWithOid;
use pgrx::prelude::*;

use crate::error::{raise, required, MfaError, OrRaise};
use crate::factor_types::FactorType;
use crate::spi_util::{run, Stmt};

/// The method names Supabase Auth records (and `sso/saml`'s spelling of SSO).
pub const KNOWN_METHODS: &[&str] = &[
    "password",
    "otp",
    "oauth",
    "totp",
    "recovery",
    "invite",
    "sso/saml",
    "magiclink",
    "email/signup",
    "email_change",
    "token_refresh",
    "anonymous",
    "web3",
    "mfa/phone",
    "mfa/webauthn",
    "mfa/recovery_code",
];

/// Whether `method` is an MFA method (one a factor type earns): recorded only by a
/// successful verification, bound to the factor that earned it.
fn is_mfa_method(method: &str) -> bool {
    FactorType::ALL.iter().any(|t| t.amr_method() == method)
}

const UPSERT_CLAIM: Stmt = Stmt {
    sql: "INSERT INTO auth.mfa_amr_claims AS a (id, session_id, authentication_method, created_at, updated_at)
          VALUES ($3, $1, $2, pg_catalog.clock_timestamp(), pg_catalog.clock_timestamp())
          ON CONFLICT ON CONSTRAINT mfa_amr_claims_session_id_authentication_method_pkey
          DO UPDATE SET updated_at = excluded.updated_at
          RETURNING a.id",
    args: &[pg_sys::UUIDOID, pg_sys::TEXTOID, pg_sys::UUIDOID],
};

/// Records that a session completed a (non-MFA) authentication method: a new claim, or the
/// existing one's `updated_at` moved to now. Returns the claim id. MFA methods are refused:
/// a claim of one without the factor that earned it would make no one aal2.
#[pg_extern(volatile, security_definer)]
#[search_path(pg_catalog, pg_temp)]
fn record_amr(session_id: Option<pgrx::Uuid>, authentication_method: Option<&str>) -> pgrx::Uuid {
    crate::error::require_writable("auth.record_amr()");
    let session_id = required(session_id, "session_id");
    let method = required(authentication_method, "authentication_method");
    if !KNOWN_METHODS.contains(&method) {
        raise(MfaError::invalid(
            "authentication_method",
            format!("unknown method; known methods are {}", KNOWN_METHODS.join(", ")),
        ));
    }
    if is_mfa_method(method) {
        raise(MfaError::MfaMethodNotRecordable(method.to_owned()));
    }
    let id = Spi::connect_mut(|client| {
        let args: [DatumWithOid; 3] = [session_id.into(), method.into(), crate::ids::uuid_v7().into()];
        run(client, &UPSERT_CLAIM, &args).first().get::<pgrx::Uuid>(1).or_raise().expect("RETURNING id")
    });
    crate::session::claims_changed();
    id
}
