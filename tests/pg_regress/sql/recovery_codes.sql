-- Recovery codes through SQL: who may generate them, their shape, that only keyed hashes are
-- stored, single use, the failure count, and that they go with the user's last factor.
-- The whole story over real connections (16-way race, lockout across ROLLBACK): tests/e2e.
SET client_min_messages = warning;
\set u '00000000-0000-0000-0000-0000000000c1'
-- Without a verified factor there is nothing to back up.
SELECT sqlstate_of(format($$SELECT auth.generate_recovery_codes(%L, gen_random_uuid())$$, :'u'));
-- A verified TOTP factor, verified in session s1 (aal2).
SELECT factor_id AS t, secret AS s FROM auth.enroll_totp(:'u', 'phone') \gset
SELECT challenge_id AS c FROM auth.create_challenge(:'t', '10.0.0.1') \gset
\set s1 '00000000-0000-0000-0000-0000000000d1'
SELECT auth.verify_challenge(:'c', auth.totp_generate(:'s'), NULL, :'s1');
-- An aal1 session, a wrong count, NULLs: refused, with their SQLSTATEs.
SELECT sqlstate_of(format($$SELECT auth.generate_recovery_codes(%L, %L)$$, :'u', gen_random_uuid()));
SELECT sqlstate_of(format($$SELECT auth.generate_recovery_codes(%L, NULL)$$, :'u'));
SELECT sqlstate_of(format($$SELECT auth.generate_recovery_codes(%L, %L, 3)$$, :'u', :'s1'));
SELECT sqlstate_of(format($$SELECT auth.generate_recovery_codes(%L, %L, 17)$$, :'u', :'s1'));
SELECT sqlstate_of(format($$SELECT auth.generate_recovery_codes(NULL, %L)$$, :'s1'));
SELECT sqlstate_of(format($$SELECT auth.generate_recovery_codes(%L, %L, NULL)$$, :'u', :'s1'));
-- From the aal2 session: 10 codes, grouped, all different; a verified recovery_code factor.
CREATE TEMP TABLE codes AS SELECT row_number() OVER () AS n, code FROM auth.generate_recovery_codes(:'u', :'s1') code;
SELECT count(*) AS codes, count(DISTINCT code) AS distinct_codes,
       bool_and(code ~ '^[0-9a-hjkmnp-tv-z]{4}(-[0-9a-hjkmnp-tv-z]{4}){3}$') AS grouped_crockford
  FROM codes;
SELECT factor_type, status FROM auth.mfa_factors WHERE user_id = :'u' ORDER BY created_at;
SELECT total, remaining, created_at IS NOT NULL AS has_created_at FROM auth.recovery_codes_status(:'u');
-- Only keyed hashes are stored: no code, with or without hyphens, appears anywhere in the rows.
SELECT count(*) AS rows, bool_and(code_hash LIKE 'r2$%') AS keyed,
       (SELECT count(*) FROM auth.mfa_recovery_codes r, codes k
         WHERE strpos(r::text, replace(k.code, '-', '')) > 0 OR strpos(r::text, k.code) > 0) AS rows_showing_a_code
  FROM auth.mfa_recovery_codes;
SELECT code AS first FROM codes WHERE n = 1 \gset
SELECT code AS second FROM codes WHERE n = 2 \gset
-- A wrong code: false, counted on the set.
SELECT auth.verify_recovery_code(:'u', 'aaaa-bbbb-cccc-dddd');
SELECT auth.verify_recovery_code(:'u', 'not a code at all');
SELECT failed_verification_count FROM auth.mfa_recovery_code_sets WHERE user_id = :'u';
-- A right code in a new session s2 (hyphens, spaces and case ignored): true, aal2 through it.
\set s2 '00000000-0000-0000-0000-0000000000d2'
SELECT auth.session_aal(:'s2', :'u') AS before;
SELECT auth.verify_recovery_code(:'u', upper(replace(:'first', '-', ' ')), NULL, :'s2');
SELECT auth.session_aal(:'s2', :'u') AS after, auth.session_amr(:'s2', :'u')->0->>'method' AS method;
SELECT failed_verification_count FROM auth.mfa_recovery_code_sets WHERE user_id = :'u';
-- Single use.
SELECT auth.verify_recovery_code(:'u', :'first');
SELECT total, remaining FROM auth.recovery_codes_status(:'u');
-- Regenerating replaces the set: the old codes stop working.
SELECT count(*) AS new_codes FROM auth.generate_recovery_codes(:'u', :'s1', 4);
SELECT auth.verify_recovery_code(:'u', :'second');
SELECT total, remaining FROM auth.recovery_codes_status(:'u');
-- Recovery codes have no challenges, and their method is not recordable by hand.
SELECT id AS r FROM auth.mfa_factors WHERE user_id = :'u' AND factor_type = 'recovery_code' \gset
SELECT sqlstate_of(format($$SELECT auth.create_challenge(%L, '10.0.0.1')$$, :'r'));
SELECT sqlstate_of($$SELECT auth.record_amr(gen_random_uuid(), 'mfa/recovery_code')$$);
-- A user without codes.
SELECT sqlstate_of($$SELECT auth.verify_recovery_code('00000000-0000-0000-0000-0000000000c9', 'aaaa-bbbb-cccc-dddd')$$);
SELECT count(*) AS status_rows FROM auth.recovery_codes_status('00000000-0000-0000-0000-0000000000c9');
-- Removing the user's last verified factor removes the codes (and the aal2 they gave).
SELECT auth.unenroll_factor(:'t');
SELECT count(*) AS factors_left FROM auth.mfa_factors WHERE user_id = :'u';
SELECT count(*) AS sets_left FROM auth.mfa_recovery_code_sets WHERE user_id = :'u';
SELECT count(*) AS codes_left FROM auth.mfa_recovery_codes;
SELECT auth.session_aal(:'s2', :'u') AS after_unenroll;
-- delete_recovery_codes removes a set and is a no-op without one.
SELECT factor_id AS t2, secret AS s2k FROM auth.enroll_totp(:'u', 'phone 2') \gset
SELECT challenge_id AS c2 FROM auth.create_challenge(:'t2', '10.0.0.1') \gset
SELECT auth.verify_challenge(:'c2', auth.totp_generate(:'s2k'), NULL, :'s1');
SELECT count(*) FROM auth.generate_recovery_codes(:'u', :'s1');
SELECT auth.delete_recovery_codes(:'u');
SELECT auth.delete_recovery_codes(:'u');
SELECT count(*) AS status_rows FROM auth.recovery_codes_status(:'u');
SELECT factor_type FROM auth.mfa_factors WHERE user_id = :'u';
SELECT auth.unenroll_factor(:'t2');
