-- The MFA flow in one session (as superuser; the client tests repeat it as an ordinary
-- role). TOTP codes come from auth.totp_generate over the stored secret; the secret and the
-- generated ids differ on every run, so only their shape is shown.
SELECT factor_id, secret FROM auth.enroll_totp('00000000-0000-0000-0000-0000000000a1', 'phone app', 'ACME', 'alice') \gset
SELECT length(:'secret') AS secret_len, status, factor_type, totp_algorithm, totp_digits, totp_period
  FROM auth.mfa_factors WHERE id = :'factor_id';
SELECT uri LIKE 'otpauth://totp/ACME:bob?secret=%&issuer=ACME&algorithm=SHA1&digits=6&period=30' AS uri_ok,
       qr LIKE '%█%' AS qr_draws
  FROM auth.enroll_totp('00000000-0000-0000-0000-0000000000a2', NULL, 'ACME', 'bob');

SELECT challenge_id, code IS NULL AS totp_has_no_code,
       expires_at - clock_timestamp() BETWEEN interval '299 seconds' AND interval '300 seconds' AS expires_in_5_min
  FROM auth.create_challenge(:'factor_id', '10.0.0.1') \gset
SELECT :'totp_has_no_code' AS totp_has_no_code, :'expires_in_5_min' AS expires_in_5_min;
-- The factor's last_challenged_at is the challenge's created_at (one statement writes both).
SELECT f.last_challenged_at = c.created_at AS stamped, c.ip_address, c.otp_code IS NULL AS no_code_hash
  FROM auth.mfa_challenges c JOIN auth.mfa_factors f ON f.id = c.factor_id WHERE c.id = :'challenge_id';
-- A wrong code: false, and counted.
SELECT auth.verify_challenge(:'challenge_id', '000000') AS wrong;
SELECT failed_attempts FROM auth.mfa_factors WHERE id = :'factor_id';
-- The right code: true; the challenge, the factor, the claim and the AAL follow.
SELECT auth.totp_generate(:'secret') AS code1 \gset
SELECT auth.verify_challenge(:'challenge_id', :'code1', '10.0.0.1',
                             '00000000-0000-0000-0000-00000000005e') AS right;
SELECT verified_at IS NOT NULL AS challenge_verified FROM auth.mfa_challenges WHERE id = :'challenge_id';
SELECT status, failed_attempts,
       last_totp_step BETWEEN floor(extract(epoch FROM now()) / 30) - 1 AND floor(extract(epoch FROM now()) / 30) AS step_recorded
  FROM auth.mfa_factors WHERE id = :'factor_id';
SELECT auth.session_aal('00000000-0000-0000-0000-00000000005e'),
       jsonb_path_query_array(auth.session_amr('00000000-0000-0000-0000-00000000005e'), '$[*].method') AS methods;
-- The same code on a new challenge: a replay, refused.
SELECT challenge_id AS c2 FROM auth.create_challenge(:'factor_id', '10.0.0.1') \gset
SELECT auth.verify_challenge(:'c2', :'code1') AS replay;

-- AMR claims: upsert, order, unknown methods.
SELECT auth.record_amr('00000000-0000-0000-0000-00000000005e', 'password') IS NOT NULL AS recorded;
SELECT auth.record_amr('00000000-0000-0000-0000-00000000005e', 'password') =
       auth.record_amr('00000000-0000-0000-0000-00000000005e', 'password') AS same_claim_id;
SELECT jsonb_path_query_array(auth.session_amr('00000000-0000-0000-0000-00000000005e'), '$[*].method') AS most_recent_first;
SELECT auth.session_aal('00000000-0000-0000-0000-0000000000ff') AS unknown_session, auth.session_amr('00000000-0000-0000-0000-0000000000ff');

-- Phone factors: the code is returned once and stored only as a salted hash, keyed with a
-- server key derived from master key k1 (whose id is kept beside it).
SELECT auth.enroll_phone('00000000-0000-0000-0000-0000000000a1', '+14155552671') AS phone_factor \gset
SELECT challenge_id AS pc, code AS phone_code FROM auth.create_challenge(:'phone_factor', '::1') \gset
SELECT length(:'phone_code') AS code_len,
       otp_code ~ '^v2\$k1\$[0-9a-f]{32}\$[0-9a-f]{64}$' AS hashed, position(:'phone_code' IN otp_code) = 0 AS code_absent
  FROM auth.mfa_challenges WHERE id = :'pc';
-- The user already has a verified factor: a second one is verified only in a session that is
-- aal2 for them (here 5e, which verified the TOTP factor above).
SELECT auth.verify_challenge(:'pc', :'phone_code', NULL, '00000000-0000-0000-0000-00000000005e') AS phone_ok;
SELECT auth.session_amr('00000000-0000-0000-0000-00000000005e')->0->>'method' AS method;

-- Every refusal: an explicit SQLSTATE and a message that leaks nothing.
SELECT challenge_id AS c3 FROM auth.create_challenge(:'factor_id', '10.0.0.1') \gset
SELECT public.sqlstate_of(q) FROM unnest(ARRAY[
  $$SELECT auth.verify_challenge('00000000-0000-0000-0000-000000000000', '123456')$$,
  $$SELECT auth.verify_challenge(NULL, '123456')$$,
  format($$SELECT auth.verify_challenge(%L, NULL)$$, :'c3'),
  format($$SELECT auth.verify_challenge(%L, '123456', '10.9.9.9')$$, :'c3'),
  format($$SELECT auth.verify_challenge(%L, '123456')$$, :'challenge_id'),
  $$SELECT auth.verify_factor('00000000-0000-0000-0000-000000000000', '123456')$$,
  $$SELECT auth.create_challenge('00000000-0000-0000-0000-000000000000', '::1')$$,
  format($$SELECT auth.create_challenge(%L, NULL)$$, :'factor_id'),
  format($$SELECT auth.create_challenge(%L, '::1')$$, :'phone_factor'),
  $$SELECT auth.enroll_totp(NULL)$$,
  $$SELECT auth.enroll_totp('00000000-0000-0000-0000-0000000000a1', 'phone app')$$,
  $$SELECT auth.enroll_totp('00000000-0000-0000-0000-0000000000a1', NULL, 'AC:ME')$$,
  $$SELECT auth.enroll_phone('00000000-0000-0000-0000-0000000000a1', '4155552671')$$,
  $$SELECT auth.enroll_phone('00000000-0000-0000-0000-0000000000a1', '+1415555267100000')$$,
  $$SELECT auth.enroll_phone('00000000-0000-0000-0000-0000000000a1', '+14155552671')$$,
  $$SELECT auth.enroll_phone('00000000-0000-0000-0000-0000000000a1', NULL)$$,
  $$SELECT auth.unenroll_factor('00000000-0000-0000-0000-000000000000')$$,
  $$SELECT auth.record_amr('00000000-0000-0000-0000-00000000005e', 'TOTP')$$,
  $$SELECT auth.record_amr(NULL, 'totp')$$,
  $$SELECT auth.cleanup_challenges('-1 hour')$$,
  $$SELECT auth.cleanup_challenges('1 hour', 0)$$,
  $$SELECT auth.cleanup_challenges(NULL)$$
]) AS q;
-- None of the refusals above left a row behind.
SELECT count(*) AS factors FROM auth.mfa_factors;
SELECT count(*) AS challenges FROM auth.mfa_challenges;

-- Expiry: move the challenge's clock back instead of sleeping.
UPDATE auth.mfa_challenges SET created_at = created_at - interval '301 seconds' WHERE id = :'c3';
SELECT public.sqlstate_of(format($$SELECT auth.verify_challenge(%L, '123456')$$, :'c3'));

-- Lockout after mfa_auth.max_failed_attempts (5) failures: right codes are refused too.
-- A 1-second lockout here, so the test can wait for it to run out.
SET mfa_auth.lockout_duration = 1;
SELECT factor_id AS lf, secret AS ls FROM auth.enroll_totp('00000000-0000-0000-0000-0000000000a3') \gset
SELECT challenge_id AS lc FROM auth.create_challenge(:'lf', '::1') \gset
SELECT auth.verify_challenge(:'lc', '000000') FROM generate_series(1, 5);
SELECT failed_attempts, locked_until > now() AS locked FROM auth.mfa_factors WHERE id = :'lf';
-- A locked factor gets no new challenge either.
SELECT public.sqlstate_of(format($$SELECT auth.create_challenge(%L, '::1')$$, :'lf')) AS create_while_locked;
SELECT public.sqlstate_of(format($$SELECT auth.verify_challenge(%L, %L)$$, :'lc', auth.totp_generate(:'ls')));
-- When the lock has run out, the right code is accepted and the count resets.
SELECT pg_sleep(1.1);
SELECT auth.verify_challenge(:'lc', auth.totp_generate(:'ls')) AS after_lockout;
SELECT failed_attempts, locked_until FROM auth.mfa_factors WHERE id = :'lf';
RESET mfa_auth.lockout_duration;

-- Unenrolling removes the factor, its challenges and the claim it granted.
SELECT auth.unenroll_factor(:'factor_id');
SELECT count(*) AS challenges_left FROM auth.mfa_challenges WHERE factor_id = :'factor_id';
-- The phone factor still backs its own claim; removing it too leaves the session aal1.
SELECT auth.session_aal('00000000-0000-0000-0000-00000000005e'),
       jsonb_path_query_array(auth.session_amr('00000000-0000-0000-0000-00000000005e'), '$[*].method') AS methods;
SELECT auth.unenroll_factor(:'phone_factor');
SELECT auth.session_aal('00000000-0000-0000-0000-00000000005e'),
       jsonb_path_query_array(auth.session_amr('00000000-0000-0000-0000-00000000005e'), '$[*].method') AS methods;

-- Cleanup deletes what is older than asked, in batches.
UPDATE auth.mfa_challenges SET created_at = now() - interval '2 days';
SELECT auth.cleanup_challenges('1 day', 1) AS deleted;
SELECT count(*) AS left_over FROM auth.mfa_challenges;

-- Settings are superuser-only.
SELECT name, CASE WHEN name = 'mfa_auth.encryption_keys_file' AND setting <> '' THEN '(a path)' ELSE setting END AS setting,
       unit, context
  FROM pg_settings WHERE name LIKE 'mfa_auth.%' ORDER BY name;
