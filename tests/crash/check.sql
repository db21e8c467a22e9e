-- Invariants after crashes. Each row is one invariant and how many rows break it: all must be 0.
SELECT 'challenge verified twice' AS invariant, count(*) AS violations FROM (
  SELECT challenge_id FROM crash.accepted GROUP BY challenge_id HAVING count(*) > 1) x
UNION ALL
SELECT 'TOTP step accepted twice for one factor', count(*) FROM (
  SELECT factor_id, step FROM crash.accepted GROUP BY factor_id, step HAVING count(*) > 1) x
UNION ALL
SELECT 'step not above the previous one', count(*) FROM (
  SELECT f.id FROM auth.mfa_factors f JOIN crash.accepted a ON a.factor_id = f.id
   GROUP BY f.id, f.last_totp_step HAVING f.last_totp_step IS DISTINCT FROM max(a.step)) x
UNION ALL
SELECT 'verified challenge without a logged acceptance', count(*)
  FROM auth.mfa_challenges c
 WHERE c.verified_at IS NOT NULL AND NOT EXISTS (SELECT 1 FROM crash.accepted a WHERE a.challenge_id = c.id)
UNION ALL
SELECT 'logged acceptance of an unverified challenge', count(*)
  FROM crash.accepted a JOIN auth.mfa_challenges c ON c.id = a.challenge_id WHERE c.verified_at IS NULL
UNION ALL
SELECT 'verified challenge without its AMR claim', count(*)
  FROM crash.accepted a
 WHERE NOT EXISTS (SELECT 1 FROM auth.mfa_amr_claims m WHERE m.session_id = a.session_id AND m.authentication_method = 'totp')
UNION ALL
SELECT 'AMR claim without the link to its factor', count(*)
  FROM crash.accepted a
 WHERE NOT EXISTS (SELECT 1 FROM auth.mfa_amr_claim_factors l
                    WHERE l.session_id = a.session_id AND l.authentication_method = 'totp' AND l.factor_id = a.factor_id)
UNION ALL
SELECT 'negative or impossible failure counter', count(*)
  FROM auth.mfa_factors WHERE failed_attempts < 0 OR failed_attempts > 1000
UNION ALL
SELECT 'orphaned challenge', count(*)
  FROM auth.mfa_challenges c WHERE NOT EXISTS (SELECT 1 FROM auth.mfa_factors f WHERE f.id = c.factor_id)
UNION ALL
SELECT 'orphaned claim link', count(*)
  FROM auth.mfa_amr_claim_factors l
 WHERE NOT EXISTS (SELECT 1 FROM auth.mfa_factors f WHERE f.id = l.factor_id)
    OR NOT EXISTS (SELECT 1 FROM auth.mfa_amr_claims m
                    WHERE m.session_id = l.session_id AND m.authentication_method = l.authentication_method)
UNION ALL
SELECT 'MFA claim backed by no factor', count(*)
  FROM auth.mfa_amr_claims m
 WHERE m.authentication_method = 'totp'
   AND NOT EXISTS (SELECT 1 FROM auth.mfa_amr_claim_factors l
                    WHERE l.session_id = m.session_id AND l.authentication_method = m.authentication_method)
UNION ALL
SELECT 'unreadable secret', count(*)
  FROM crash.factors cf JOIN auth.mfa_factors f ON f.id = cf.factor_id WHERE f.secret NOT LIKE 'mfa1:%';

-- Every B-tree index of the auth schema is consistent with its table (amcheck with
-- heapallindexed; an inconsistency raises an error and fails the run).
SELECT count(*) AS btree_indexes_checked FROM (
  SELECT bt_index_check(c.oid, true)::text
    FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_namespace n ON n.oid = c.relnamespace
   WHERE n.nspname = 'auth' AND c.relam = (SELECT oid FROM pg_am WHERE amname = 'btree')) x;
