-- Resources: inputs bounded before anything is allocated for them, cleanup that costs what
-- it deletes, phone challenges closed by a success, rotation in bounded batches.

-- Every length cap, with its SQLSTATE (54000) and a message naming the argument.
SELECT public.sqlstate_of(q) FROM unnest(ARRAY[
  $$SELECT auth.qr_text(repeat('1', 5597))$$,
  $$SELECT auth.qr_svg(repeat('A', 5597))$$,
  $$SELECT auth.otpauth_parse('otpauth://totp/a?secret=' || repeat('A', 65536))$$,
  $$SELECT auth.totp_generate(repeat('A', 65537))$$,
  $$SELECT auth.totp_verify(repeat('A', 65537), '123456')$$,
  $$SELECT auth.hotp_generate(repeat('A', 65537), 0)$$,
  $$SELECT auth.otpauth_uri('JBSWY3DPEHPK3PXP', repeat('a', 2332), 'ACME')$$,
  $$SELECT auth.otpauth_uri('JBSWY3DPEHPK3PXP', 'alice', repeat('i', 2332))$$,
  $$SELECT auth.enroll_totp(gen_random_uuid(), repeat('n', 1025))$$,
  $$SELECT auth.enroll_totp(gen_random_uuid(), NULL, repeat('i', 2332))$$,
  $$SELECT auth.enroll_phone(gen_random_uuid(), '+14155552671', repeat('n', 1025))$$
]) AS q;
-- Just under the caps: accepted.
SELECT length(auth.qr_text(repeat('1', 5596))) > 0 AS largest_numeric_qr,
       auth.otpauth_uri('JBSWY3DPEHPK3PXP', repeat('a', 2331), 'ACME') LIKE 'otpauth://%' AS longest_label,
       length(auth.totp_generate(repeat('A', 65536))) AS long_secret_code_len;

-- cleanup_challenges: the cutoff bounds the index scan; a call with nothing to delete reads
-- no young row. 20 000 young challenges, 50 old ones (and none left by earlier tests).
DELETE FROM auth.mfa_challenges;
INSERT INTO auth.mfa_challenges (factor_id, created_at, ip_address)
  SELECT gen_random_uuid(), now() - make_interval(secs => g), '::1' FROM generate_series(1, 20000) g;
INSERT INTO auth.mfa_challenges (factor_id, created_at, ip_address)
  SELECT gen_random_uuid(), now() - interval '3 days' - make_interval(secs => g), '::1' FROM generate_series(1, 50) g;
ANALYZE auth.mfa_challenges;
SELECT auth.cleanup_challenges('2 days', 20) AS deleted_old;
SELECT auth.cleanup_challenges('2 days') AS deleted_none;
-- The batched procedure commits per batch: 1 000 old challenges in 10 batches of 100.
DELETE FROM auth.mfa_challenges;
INSERT INTO auth.mfa_challenges (factor_id, created_at, ip_address)
  SELECT gen_random_uuid(), now() - interval '10 days' - make_interval(secs => g), '::1' FROM generate_series(1, 1000) g;
INSERT INTO auth.mfa_challenges (factor_id, created_at, ip_address)
  SELECT gen_random_uuid(), now(), '::1' FROM generate_series(1, 5) g;
CALL auth.cleanup_challenges_batched('7 days', 100);
SELECT count(*) AS left_after_batched FROM auth.mfa_challenges;
SELECT public.sqlstate_of(q) FROM unnest(ARRAY[
  $$CALL auth.cleanup_challenges_batched(NULL)$$,
  $$CALL auth.cleanup_challenges_batched('-1 day')$$,
  $$CALL auth.cleanup_challenges_batched('1 day', 0)$$,
  $$SELECT auth.cleanup_challenges_batch(NULL)$$,
  $$SELECT auth.cleanup_challenges_batch(now(), -1)$$
]) AS q;
TRUNCATE auth.mfa_challenges;

-- A successful phone verification closes the factor's other open challenges.
SET mfa_auth.phone_resend_interval = 0;
SELECT auth.enroll_phone('00000000-0000-0000-0000-0000000000c1', '+14155550100') AS pf \gset
SELECT challenge_id AS first_c, code AS first_code FROM auth.create_challenge(:'pf', '::1') \gset
SELECT challenge_id AS second_c, code AS second_code FROM auth.create_challenge(:'pf', '::1') \gset
SELECT auth.verify_challenge(:'second_c', :'second_code') AS verified;
SELECT count(*) AS open_challenges_left FROM auth.mfa_challenges WHERE factor_id = :'pf' AND verified_at IS NULL;
SELECT public.sqlstate_of(format($$SELECT auth.verify_challenge(%L, %L)$$, :'first_c', :'first_code'));
RESET mfa_auth.phone_resend_interval;

-- Rotation in bounded batches: rotate_secrets(NULL) does at most 1000 rows per call.
SET mfa_auth.encryption_keys = '';
DELETE FROM auth.mfa_factors;  -- (earlier tests left secrets sealed with keys of their own)
INSERT INTO auth.mfa_factors (user_id, factor_type, secret, friendly_name)
  SELECT gen_random_uuid(), 'totp', 'JBSWY3DPEHPK3PXP', 'rotation' FROM generate_series(1, 1500);
SET mfa_auth.encryption_keys = 'r1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=';
SELECT auth.rotate_secrets() AS first_call, auth.rotate_secrets() AS second_call, auth.rotate_secrets() AS third_call;
UPDATE auth.mfa_factors SET secret = 'JBSWY3DPEHPK3PXP' WHERE friendly_name = 'rotation';
CALL auth.rotate_secrets_batched(400);
SELECT count(*) FILTER (WHERE secret LIKE 'mfa1:%') AS sealed, count(*) AS rotation_factors
  FROM auth.mfa_factors WHERE friendly_name = 'rotation';
RESET mfa_auth.encryption_keys;
DELETE FROM auth.mfa_factors;
