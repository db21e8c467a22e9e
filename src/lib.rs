//! mfa_auth: multi-factor authentication inside PostgreSQL.
//!
//! This file is glue only: the module magic, the module tree and the order in
//! which hand-written SQL (`sql/`) and generated function definitions are loaded.
//! The protocol core is the crate `mfa_auth_core` (core/), which has no pgrx dependency;
//! its modules are re-exported here as [`otp`] and [`webauthn`].

use pgrx::prelude::*;

::pgrx::pg_module_magic!();

// The layers, top to bottom (docs/architecture.md): the SQL functions; the verification
// pipeline and the factor kinds it drives; the domain modules; the Postgres plumbing. The
// pure core is the crate mfa_auth_core.
mod api;

mod factor_kinds;
mod verification;

mod amr;
mod attempt_limits;
mod audit;
mod challenges;
mod factors;
mod hooks;
mod recovery;
mod relying_party;
mod secrets;
mod session;
mod settings;

pub mod pg;

pub use mfa_auth_core::{otp, webauthn};

// Schema objects first: types, tables, indexes (readable SQL in sql/). Each file below requires the
// one before it as well as what it uses: pgrx orders SQL blocks without a dependency between them
// differently from build to build, and the install script (so the package) is the same for a
// commit only if their order is total.
extension_sql_file!("../sql/schema.sql", name = "schema", bootstrap);
// SQL-language functions reading the claims; functions returning this extension's own SQL
// types, and the current user's factor list; recovery-code status, in SQL. Their SECURITY
// DEFINER functions have SQL-standard bodies (bound by OID when created).
extension_sql_file!("../sql/amr.sql", name = "amr", requires = ["schema"]);
extension_sql_file!("../sql/session.sql", name = "session", requires = ["schema", "amr", api::sessions::uid]);
extension_sql_file!("../sql/recovery.sql", name = "recovery", requires = ["schema", "session", api::sessions::uid]);
// The audit trail's table and its readers' role.
extension_sql_file!("../sql/audit.sql", name = "audit", requires = ["schema", "recovery"]);
// Enforcement helpers for policies: auth.aal_next(), auth.mfa_satisfied().
extension_sql_file!(
    "../sql/enforcement.sql",
    name = "enforcement",
    requires = ["session", "audit", api::sessions::aal_next, api::sessions::aal_next_of, api::sessions::mfa_satisfied]
);
// Procedures that commit per batch, calling their SECURITY DEFINER steps.
extension_sql_file!(
    "../sql/maintenance.sql",
    name = "maintenance",
    requires = ["enforcement", api::admin::cleanup_challenges_batch, api::admin::rotate_secrets]
);
// EXECUTE grants, once every function exists.
extension_sql_file!("../sql/grants.sql", name = "grants", finalize);

#[pg_guard]
pub extern "C-unwind" fn _PG_init() {
    pg::error::disable_backtraces();
    settings::init();
    hooks::init();
    session::settings::init();
    secrets::init();
    attempt_limits::init();
    audit::init();
    session::init();
    pg::utility_hook::install(session::discard_all);
}

#[cfg(any(test, feature = "pg_test"))]
#[pg_schema]
mod tests {
    use pgrx::prelude::*;

    #[pg_test]
    fn seed_tables_exist_in_auth() {
        let n = Spi::get_one::<i64>(
            "SELECT count(*) FROM pg_catalog.pg_tables WHERE schemaname = 'auth'
               AND tablename IN ('mfa_challenges', 'mfa_amr_claims', 'mfa_factors')",
        );
        assert_eq!(n, Ok(Some(3)));
    }

    #[pg_test]
    fn defaults_fill_ids_and_times() {
        Spi::run(
            "INSERT INTO auth.mfa_factors (user_id, factor_type, secret) VALUES (gen_random_uuid(), 'totp', 'JBSWY3DP');
             INSERT INTO auth.mfa_challenges (factor_id, ip_address)
               SELECT id, '127.0.0.1' FROM auth.mfa_factors;
             INSERT INTO auth.mfa_amr_claims (session_id, authentication_method)
               VALUES (gen_random_uuid(), 'totp');",
        )
        .unwrap();
        let ok = Spi::get_one::<bool>(
            "SELECT (SELECT status = 'unverified' AND created_at = now() FROM auth.mfa_factors)
                AND (SELECT id IS NOT NULL AND created_at = now() AND verified_at IS NULL FROM auth.mfa_challenges)
                AND (SELECT id IS NOT NULL AND updated_at = now() FROM auth.mfa_amr_claims)",
        );
        assert_eq!(ok, Ok(Some(true)));
    }

    #[pg_test]
    #[should_panic(
        expected = "duplicate key value violates unique constraint \"mfa_amr_claims_session_id_authentication_method_pkey\""
    )]
    fn amr_claim_is_unique_per_session_and_method() {
        Spi::run(
            "INSERT INTO auth.mfa_amr_claims (session_id, authentication_method)
               VALUES ('00000000-0000-0000-0000-000000000001', 'totp'),
                      ('00000000-0000-0000-0000-000000000001', 'totp')",
        )
        .unwrap();
    }

    /// The MFA methods sql/amr.sql spells (in session_amr) are the ones the factor types earn,
    /// and the factor types are auth.factor_type's labels, in order.
    #[pg_test]
    fn sql_and_rust_agree_on_the_mfa_methods_and_factor_types() {
        use mfa_auth_core::factor_type::FactorType;
        let mut rust: Vec<&str> = FactorType::ALL.iter().map(|t| t.amr_method()).collect();
        rust.sort_unstable();
        let sql = Spi::get_one::<String>(
            r"SELECT array_to_string(ARRAY(SELECT unnest(substring(pg_get_functiondef(oid) from '''(\{[^}]*\})''::text\[\]')::text[]) ORDER BY 1), ',')
                FROM pg_proc WHERE oid = 'auth.session_amr(uuid, uuid)'::regprocedure",
        );
        assert_eq!(sql, Ok(Some(rust.join(","))));
        let labels = Spi::get_one::<String>(
            "SELECT string_agg(enumlabel, ',' ORDER BY enumsortorder) FROM pg_enum
              WHERE enumtypid = 'auth.factor_type'::regtype",
        );
        let types: Vec<&str> = FactorType::ALL.iter().map(|t| t.sql_name()).collect();
        assert_eq!(labels, Ok(Some(types.join(","))));
    }

    #[pg_test]
    fn preloaded_attempt_limits_and_encrypted_secrets() {
        let durable = Spi::get_one::<bool>("SELECT survives_rollback FROM auth.attempt_tracking()");
        assert_eq!(durable, Ok(Some(true)));
        let (id, secret) =
            Spi::get_two::<pgrx::Uuid, String>("SELECT factor_id, secret FROM auth.enroll_totp(gen_random_uuid())")
                .unwrap();
        let sealed = Spi::get_one_with_args::<bool>(
            "SELECT secret LIKE 'mfa1:test:%' AND strpos(secret, $2) = 0 FROM auth.mfa_factors WHERE id = $1",
            &[id.unwrap().into(), secret.unwrap().into()],
        );
        assert_eq!(sealed, Ok(Some(true)));
    }

    #[pg_test]
    fn unenrolling_a_factor_removes_its_challenges_and_links() {
        Spi::run(
            "INSERT INTO auth.mfa_factors (id, user_id, factor_type, secret)
               VALUES ('00000000-0000-0000-0000-0000000000f1', gen_random_uuid(), 'totp', 'JBSWY3DP'),
                      ('00000000-0000-0000-0000-0000000000f2', gen_random_uuid(), 'totp', 'JBSWY3DP');
             INSERT INTO auth.mfa_challenges (factor_id, ip_address)
               VALUES ('00000000-0000-0000-0000-0000000000f1', '::1'), ('00000000-0000-0000-0000-0000000000f2', '::1');
             INSERT INTO auth.mfa_amr_claims (session_id, authentication_method)
               VALUES ('00000000-0000-0000-0000-00000000005e', 'totp');
             INSERT INTO auth.mfa_amr_claim_factors (session_id, authentication_method, factor_id)
               VALUES ('00000000-0000-0000-0000-00000000005e', 'totp', '00000000-0000-0000-0000-0000000000f1');
             SELECT auth.unenroll_factor('00000000-0000-0000-0000-0000000000f1');",
        )
        .unwrap();
        let left = Spi::get_one::<String>(
            "SELECT format('%s/%s/%s/%s', (SELECT count(*) FROM auth.mfa_factors), (SELECT count(*) FROM auth.mfa_challenges),
                           (SELECT count(*) FROM auth.mfa_amr_claims), (SELECT count(*) FROM auth.mfa_amr_claim_factors))",
        );
        // The other factor and its challenge stay; the claim and link granted by f1 are gone.
        assert_eq!(left, Ok(Some("1/1/0/0".to_string())));
    }
}

/// Required by `cargo pgrx test`.
#[cfg(test)]
pub mod pg_test {
    pub fn setup(_options: Vec<&str>) {}

    pub fn postgresql_conf_options() -> Vec<&'static str> {
        // As in production: preloaded (shared-memory attempt limits) with a master key.
        vec![
            "shared_preload_libraries = 'mfa_auth'",
            "mfa_auth.encryption_keys = 'test:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8='",
        ]
    }
}
