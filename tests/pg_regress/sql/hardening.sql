-- Security hardening: failed attempts that survive ROLLBACK, and TOTP secrets encrypted at
-- rest. Runs in every configuration of scripts/lib.sh (expected/<configuration>/ holds the
-- outputs that differ from the key-file one): keys set here for the session follow the key
-- file's, which stays current; without preloading, counts are as durable as the transaction.
SELECT survives_rollback, capacity FROM auth.attempt_tracking();

-- 1. Rollback-proof attempt limits ----------------------------------------------------
SET mfa_auth.max_failed_attempts = 5;
SELECT factor_id AS f1, secret AS s1 FROM auth.enroll_totp('00000000-0000-0000-0000-00000000b001') \gset
SELECT challenge_id AS c1 FROM auth.create_challenge(:'f1', '10.0.0.1') \gset
-- Seven rounds of BEGIN; wrong code; ROLLBACK. Five are evaluated (false), then the factor
-- is locked although every transaction rolled back.
BEGIN; SELECT auth.verify_challenge(:'c1', '000000') AS round_1; ROLLBACK;
BEGIN; SELECT auth.verify_challenge(:'c1', '000001') AS round_2; ROLLBACK;
BEGIN; SELECT auth.verify_challenge(:'c1', '000002') AS round_3; ROLLBACK;
BEGIN; SELECT auth.verify_challenge(:'c1', '000003') AS round_4; ROLLBACK;
BEGIN; SELECT auth.verify_challenge(:'c1', '000004') AS round_5; ROLLBACK;
BEGIN; SELECT sqlstate_of(format('SELECT auth.verify_challenge(%L, %L)', :'c1', '000005')) AS round_6; ROLLBACK;
BEGIN; SELECT sqlstate_of(format('SELECT auth.verify_challenge(%L, %L)', :'c1', '000006')) AS round_7; ROLLBACK;
-- The row's counter was rolled back with every transaction; the audit writer writes the count
-- and the lock into the row in a transaction of its own (so a crash or a failover keeps them),
-- within 100 ms: waited for here, 10 s at most. Without preloading there is no writer, and no
-- count that survives a rollback. The lock holds, for the right code too, and for new challenges.
SELECT set_config('regress.f1', :'f1', false) IS NOT NULL AS noted;
DO $$ BEGIN
  FOR i IN 1..200 LOOP
    EXIT WHEN NOT (SELECT survives_rollback FROM auth.attempt_tracking())
           OR (SELECT failed_attempts FROM auth.mfa_factors WHERE id = current_setting('regress.f1')::uuid) = 5;
    PERFORM pg_sleep(0.05);
  END LOOP;
END $$;
SELECT failed_attempts, locked_until > now() + interval '4 minutes' AS locked_for_the_lockout
  FROM auth.mfa_factors WHERE id = :'f1';
SELECT sqlstate_of(format('SELECT auth.verify_challenge(%L, auth.totp_generate(%L))', :'c1', :'s1')) AS right_code_while_locked;
SELECT sqlstate_of(format('SELECT auth.create_challenge(%L, %L)', :'f1', '10.0.0.1')) AS new_challenge_while_locked;
SELECT tracked_factors >= 1 AS tracked FROM auth.attempt_tracking();
-- A failure inside a statement that fails afterwards counts as well.
SELECT factor_id AS f2 FROM auth.enroll_totp('00000000-0000-0000-0000-00000000b002') \gset
SELECT challenge_id AS c2 FROM auth.create_challenge(:'f2', '10.0.0.1') \gset
SELECT v, 1 / (v::int * 0) FROM (SELECT auth.verify_challenge(:'c2', '000000') AS v) s;
SELECT auth.verify_challenge(:'c2', '000000') AS second_failure;
SELECT failed_attempts AS persisted_count FROM auth.mfa_factors WHERE id = :'f2';
-- An administrator lifts the lock: row and shared memory.
SELECT auth.unlock_factor(:'f1');
SELECT auth.verify_challenge(:'c1', auth.totp_generate(:'s1')) AS right_code_after_unlock;
SELECT failed_attempts, locked_until, status FROM auth.mfa_factors WHERE id = :'f1';

-- 2. Secrets encrypted at rest --------------------------------------------------------
-- Stored sealed: key id, nonce, ciphertext; the base32 secret appears nowhere.
SELECT secret LIKE 'mfa1:k1:%' AS sealed_with_k1, strpos(secret, :'s1') AS plaintext_at,
       array_length(string_to_array(secret, ':'), 1) AS parts
  FROM auth.mfa_factors WHERE id = :'f1';
SELECT count(*) AS unsealed_totp_secrets FROM auth.mfa_factors
 WHERE factor_type = 'totp' AND secret NOT LIKE 'mfa1:%';
-- A sealed value moved to another row does not open there.
SELECT factor_id AS f3, secret AS s3 FROM auth.enroll_totp('00000000-0000-0000-0000-00000000b003') \gset
SELECT challenge_id AS c3 FROM auth.create_challenge(:'f3', '10.0.0.1') \gset
BEGIN;
UPDATE auth.mfa_factors SET secret = (SELECT secret FROM auth.mfa_factors WHERE id = :'f1') WHERE id = :'f3';
SELECT regexp_replace(sqlstate_of(format('SELECT auth.verify_challenge(%L, %L)', :'c3', '123456')),
                      '[0-9a-f]{8}-[0-9a-f-]{27}', '<factor>') AS moved_secret;
ROLLBACK;

-- Rotation: a new current key k2 in front of k1 (set for this session only; the value is
-- never printed).
SELECT set_config('mfa_auth.encryption_keys',
                  concat_ws(',', 'k2:ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8=', nullif(current_setting('mfa_auth.encryption_keys'), '')),
                  false) IS NOT NULL AS k2_first;
-- Used secrets are re-sealed with the current key as a side effect of verification.
SELECT auth.verify_challenge(:'c3', auth.totp_generate(:'s3')) AS f3_verified_with_k1_secret;
SELECT secret LIKE 'mfa1:k2:%' AS f3_resealed_with_k2 FROM auth.mfa_factors WHERE id = :'f3';
-- auth.rotate_secrets() does the rest, in batches when asked.
SELECT count(*) AS not_on_k2 FROM auth.mfa_factors WHERE secret NOT LIKE 'mfa1:k2:%' \gset
SELECT auth.rotate_secrets(1) AS rotated_batch;
SELECT auth.rotate_secrets() + 1 = :not_on_k2 AS rotated_the_rest;
SELECT auth.rotate_secrets() AS nothing_left;
SELECT count(*) AS not_on_k2 FROM auth.mfa_factors WHERE factor_type = 'totp' AND secret NOT LIKE 'mfa1:k2:%';
-- With k1 gone, everything still verifies.
SELECT set_config('mfa_auth.encryption_keys', 'k2:ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8=', false) IS NOT NULL AS only_k2;
SELECT factor_id AS f4, secret AS s4 FROM auth.enroll_totp('00000000-0000-0000-0000-00000000b004') \gset
SELECT challenge_id AS c4 FROM auth.create_challenge(:'f4', '10.0.0.1') \gset
SELECT auth.verify_challenge(:'c4', auth.totp_generate(:'s4')) AS verified_with_k2_only;

-- A wrong key under the right id, or a missing key: a clear error, never a wrong code, and
-- nothing counted.
SELECT challenge_id AS c5 FROM auth.create_challenge(:'f2', '10.0.0.1') \gset
SELECT set_config('mfa_auth.encryption_keys', 'k2:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=', false) IS NOT NULL AS wrong_k2;
SELECT regexp_replace(sqlstate_of(format('SELECT auth.verify_challenge(%L, %L)', :'c5', '123456')),
                      '[0-9a-f]{8}-[0-9a-f-]{27}', '<factor>') AS wrong_key;
SELECT set_config('mfa_auth.encryption_keys', 'k9:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=', false) IS NOT NULL AS only_k9;
SELECT regexp_replace(sqlstate_of(format('SELECT auth.verify_challenge(%L, %L)', :'c5', '123456')),
                      '[0-9a-f]{8}-[0-9a-f-]{27}', '<factor>') AS missing_key;
SELECT failed_attempts AS still_two FROM auth.mfa_factors WHERE id = :'f2';
-- A malformed setting: which entry and why, never the key text.
SELECT set_config('mfa_auth.encryption_keys', 'k2:ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8=,k3:c2VjcmV0', false) IS NOT NULL AS malformed;
SELECT sqlstate_of($$SELECT auth.enroll_totp('00000000-0000-0000-0000-00000000b005')$$) AS malformed_keys;

-- Without a key: plaintext, with a WARNING once per session; rotation refuses.
SELECT set_config('mfa_auth.encryption_keys', '', false) IS NOT NULL AS no_key;
SELECT factor_id AS f6, secret AS s6 FROM auth.enroll_totp('00000000-0000-0000-0000-00000000b006') \gset
SELECT count(*) AS second_enroll_warns_no_more FROM auth.enroll_totp('00000000-0000-0000-0000-00000000b007');
SELECT secret = :'s6' AS stored_plaintext FROM auth.mfa_factors WHERE id = :'f6';
SELECT sqlstate_of('SELECT auth.rotate_secrets()') AS rotate_without_key;
-- Configure a key again: rotation seals the plaintext rows.
SELECT set_config('mfa_auth.encryption_keys', 'k2:ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8=', false) IS NOT NULL AS k2_again;
SELECT auth.rotate_secrets() AS sealed_plaintext_rows;
SELECT challenge_id AS c6 FROM auth.create_challenge(:'f6', '10.0.0.1') \gset
SELECT auth.verify_challenge(:'c6', auth.totp_generate(:'s6')) AS verified_after_sealing;
RESET mfa_auth.encryption_keys;

-- The setting is superuser-only: hidden from ordinary roles.
CREATE ROLE hardening_reader;
SET ROLE hardening_reader;
-- (Postgres's own wording of these refusals changed in 16: the SQLSTATE is what is pinned.)
SELECT left(sqlstate_of('SHOW mfa_auth.encryption_keys'), 5) AS show_as_ordinary_role;
SELECT count(*) AS visible_in_pg_settings FROM pg_settings WHERE name = 'mfa_auth.encryption_keys';
SELECT left(sqlstate_of($$SELECT current_setting('mfa_auth.encryption_keys')$$), 5) AS current_setting_as_ordinary_role;
SELECT sqlstate_of($$SET mfa_auth.encryption_keys = ''$$) AS set_as_ordinary_role;
SELECT sqlstate_of('SELECT auth.rotate_secrets()') AS rotate_as_ordinary_role;
SELECT sqlstate_of(format('SELECT auth.unlock_factor(%L)', :'f1')) AS unlock_as_ordinary_role;
RESET ROLE;
DROP ROLE hardening_reader;
SELECT auth.unenroll_factor(id) FROM auth.mfa_factors WHERE user_id::text LIKE '00000000-0000-0000-0000-00000000b00%';
