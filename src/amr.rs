//! Authentication Method Reference claims of sessions.

use pgrx::datum::DatumWithOid;
use pgrx::prelude::*;

use crate::pg::error::{raise, MfaError, OrRaise};
use crate::pg::spi::{run, Stmt};
use mfa_auth_core::factor_type::FactorType;

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

/// The one upsert of a session's claim of a method, for record_amr and for every successful
/// verification (src/factor_kinds/record.rs): `$rows` selects (id, session_id,
/// authentication_method, created_at, updated_at); an existing claim of the session and
/// method only has its `updated_at` moved.
macro_rules! claim_upsert {
    ($rows:literal, $returning:literal) => {
        concat!(
            "INSERT INTO auth.mfa_amr_claims AS a (id, session_id, authentication_method, created_at, updated_at)
          ",
            $rows,
            "
          ON CONFLICT ON CONSTRAINT mfa_amr_claims_session_id_authentication_method_pkey
          DO UPDATE SET updated_at = excluded.updated_at
          RETURNING ",
            $returning
        )
    };
}
pub(crate) use claim_upsert;

const UPSERT_CLAIM: Stmt = Stmt {
    sql: claim_upsert!("VALUES ($3, $1, $2, pg_catalog.clock_timestamp(), pg_catalog.clock_timestamp())", "a.id"),
    args: &[pg_sys::UUIDOID, pg_sys::TEXTOID, pg_sys::UUIDOID],
};

/// Records that a session completed a (non-MFA) authentication method: a new claim, or the
/// existing one's `updated_at` moved to now. Returns the claim id. MFA methods are refused:
/// a claim of one without the factor that earned it would make no one aal2.
pub fn record(session_id: pgrx::Uuid, method: &str) -> pgrx::Uuid {
    if !KNOWN_METHODS.contains(&method) {
        raise(MfaError::invalid(
            "authentication_method",
            format!("unknown method; known methods are {}", KNOWN_METHODS.join(", ")),
        ));
    }
    if FactorType::is_mfa_method(method) {
        raise(MfaError::MfaMethodNotRecordable(method.to_owned()));
    }
    let id = Spi::connect_mut(|client| {
        let args: [DatumWithOid; 3] = [session_id.into(), method.into(), crate::pg::ids::uuid_v7().into()];
        run(client, &UPSERT_CLAIM, &args).first().get::<pgrx::Uuid>(1).or_raise().expect("RETURNING id")
    });
    crate::session::claims_changed();
    id
}

/// auth.sign_out_user(): every session of the user loses every claim (aal1 everywhere, as a
/// Supabase Auth global sign-out); the number of claims removed.
pub fn sign_out_user(user_id: pgrx::Uuid) -> i64 {
    let users: Vec<Option<pgrx::Uuid>> = vec![Some(user_id)];
    let sessions: Vec<Option<pgrx::Uuid>> = Vec::new();
    let removed = Spi::connect_mut(|client| {
        crate::pg::schema::check_schema(client);
        let args: [DatumWithOid; 2] = [users.into(), sessions.into()];
        client.update(crate::audit::SIGN_OUT_SQL, None, &args).or_raise().len() as i64
    });
    crate::session::claims_changed();
    crate::audit::at_commit(
        crate::audit::event(crate::audit::Event::UserSignedOut)
            .user(Some(crate::audit::bytes(user_id)))
            .traits(&crate::audit::Traits::new().int("claims", removed)),
    );
    removed
}
