//! Challenges: creating them (create.rs) and removing old ones (cleanup.rs). Verifying one is
//! the verification pipeline's (src/verification/).

pub mod cleanup;
pub mod create;

#[cfg(any(test, feature = "pg_test"))]
use pgrx::prelude::*;

#[cfg(any(test, feature = "pg_test"))]
#[pg_schema]
mod tests {
    use pgrx::prelude::*;

    /// 20 000 challenges over 5 000 factors plus 2 000 of one factor, analyzed, so the planner
    /// sees tables too big to scan whole (with a few hundred factors a hash join over a 2-page
    /// seq scan wins) and a factor whose history is worth reading newest-first.
    fn load() {
        Spi::run(
            "INSERT INTO auth.mfa_factors (id, user_id, factor_type, secret)
               SELECT ('00000000-0000-0000-0000-' || lpad(to_hex(f), 12, '0'))::uuid, gen_random_uuid(), 'totp', 'JBSWY3DPEHPK3PXP'
                 FROM generate_series(1, 5000) f;
             INSERT INTO auth.mfa_challenges (factor_id, created_at, ip_address)
               SELECT ('00000000-0000-0000-0000-' || lpad(to_hex(1 + i % 5000), 12, '0'))::uuid,
                      now() - make_interval(secs => i * 10), '10.0.0.1'
                 FROM generate_series(1, 20000) i;
             -- One factor with a long history: its newest challenge must be found newest-first.
             INSERT INTO auth.mfa_challenges (factor_id, created_at, ip_address)
               SELECT '00000000-0000-0000-0000-000000000007', now() - make_interval(secs => i), '10.0.0.1'
                 FROM generate_series(1, 2000) i;
             ANALYZE auth.mfa_factors; ANALYZE auth.mfa_challenges;",
        )
        .unwrap();
    }

    fn plan(stmt: &crate::pg::spi::Stmt, args: &str) -> String {
        // The statement exactly as the extension prepares it (same parameter types), bound.
        let types: Vec<String> = stmt.args.iter().map(|o| format!("{}::oid::regtype", o.to_u32())).collect();
        let types = Spi::get_one::<String>(&format!("SELECT concat_ws(', ', {})", types.join(", "))).unwrap().unwrap();
        Spi::run(&format!("PREPARE p({types}) AS {}", stmt.sql)).unwrap();
        let text = Spi::connect(|c| {
            c.select(&format!("EXPLAIN (COSTS OFF) EXECUTE p({args})"), None, &[])
                .unwrap()
                .map(|r| r.get::<String>(1).unwrap().unwrap_or_default())
                .collect::<Vec<_>>()
                .join("\n")
        });
        Spi::run("DEALLOCATE p").unwrap();
        text
    }

    #[pg_test]
    fn verify_factor_finds_the_newest_challenge_by_index() {
        load();
        let p = plan(&crate::factor_kinds::row::LOOKUP_FACTOR, "'00000000-0000-0000-0000-000000000007', 300, NULL");
        assert!(p.contains("Index Scan using mfa_challenges_factor_id_created_at_idx"), "{p}");
        assert!(p.contains("Index Scan using mfa_challenges_pkey"), "{p}");
        assert!(p.contains("Index Scan using mfa_factors_pkey"), "{p}");
        assert!(!p.contains("Seq Scan"), "{p}");
    }

    #[pg_test]
    fn verify_challenge_is_primary_key_lookups() {
        load();
        let p = plan(
            &crate::factor_kinds::row::LOOKUP_CHALLENGE,
            "'00000000-0000-0000-0000-000000000001', 300, '10.0.0.1'",
        );
        assert!(p.contains("Index Scan using mfa_challenges_pkey"), "{p}");
        assert!(!p.contains("Seq Scan"), "{p}");
    }

    #[pg_test]
    fn cleanup_walks_the_created_at_index() {
        load();
        let p = plan(&super::cleanup::CLEANUP_BATCH, "now() - interval '24 hours', 1000");
        assert!(p.contains("Index Scan Backward using mfa_challenge_created_at_idx"), "{p}");
        // The cutoff bounds the scan (Index Cond), not a Filter over every young row.
        // (EXPLAIN EXECUTE shows the custom plan: the bound cutoff as a constant.)
        assert!(p.contains("Index Cond: (created_at < '"), "{p}");
        assert!(!p.contains("Filter"), "{p}");
        assert!(p.contains("LockRows"), "{p}");
        assert!(!p.contains("Seq Scan"), "{p}");
    }
}
