-- The bad-input matrix: hostile or malformed arguments across the public functions. Every
-- case shows its SQLSTATE and message (or the documented NULL/false); none may be XX000 or
-- carry panic text, and none may leave a row behind (checked at the end).
SELECT factor_id AS f, secret AS s FROM auth.enroll_totp('00000000-0000-0000-0000-0000000000b1', 'matrix') \gset
SELECT challenge_id AS c FROM auth.create_challenge(:'f', '10.0.0.1') \gset
SELECT count(*) AS factors_before FROM auth.mfa_factors \gset
SELECT count(*) AS challenges_before FROM auth.mfa_challenges \gset
SELECT count(*) AS claims_before FROM auth.mfa_amr_claims \gset

-- Outcome of one case: its SQLSTATE and message, or "ok:" and its (shortened) value.
CREATE FUNCTION pg_temp.outcome(stmt text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE r text;
BEGIN
  EXECUTE stmt INTO r;
  RETURN 'ok: ' || coalesce(left(r, 50), 'NULL');
EXCEPTION WHEN OTHERS THEN
  RETURN SQLSTATE || ': ' || left(SQLERRM, 110);
END $$;

CREATE TEMP TABLE matrix (n serial, q text);
INSERT INTO matrix (q) VALUES
  -- secrets: huge, unicode, control characters, only separators
  ($$SELECT auth.totp_generate(repeat('A', 10240), to_timestamp(1700000000))$$),
  ($$SELECT auth.totp_generate(repeat('1', 10240))$$),
  ($$SELECT auth.totp_generate('JBSWY3DPÉHPK3PXP')$$),
  ($$SELECT auth.totp_generate('JBSWY3DP' || chr(9731) || 'EHPK')$$),
  ($$SELECT auth.totp_generate(E'JBSW\nY3DP')$$),
  ($$SELECT auth.totp_generate(' - - ')$$),
  ($$SELECT auth.totp_generate('====')$$),
  -- codes: non-digits, wrong lengths, unicode digits, huge -> NULL (no match), never an error
  ($$SELECT coalesce(auth.totp_verify('JBSWY3DPEHPK3PXP', repeat('1', 10240))::text, 'NULL')$$),
  ($$SELECT coalesce(auth.totp_verify('JBSWY3DPEHPK3PXP', '12345')::text, 'NULL')$$),
  ($$SELECT coalesce(auth.totp_verify('JBSWY3DPEHPK3PXP', '1234567')::text, 'NULL')$$),
  ($$SELECT coalesce(auth.totp_verify('JBSWY3DPEHPK3PXP', '١٢٣٤٥٦')::text, 'NULL')$$),
  ($$SELECT coalesce(auth.totp_verify('JBSWY3DPEHPK3PXP', '12 34 5x')::text, 'NULL')$$),
  ($$SELECT coalesce(auth.totp_verify('JBSWY3DPEHPK3PXP', '')::text, 'NULL')$$),
  ($$SELECT coalesce(auth.totp_verify('JBSWY3DPEHPK3PXP', E'123456\n')::text, 'NULL')$$),
  -- numbers out of range
  ($$SELECT auth.totp_verify('JBSWY3DPEHPK3PXP', '123456', now(), 2147483647)$$),
  ($$SELECT auth.totp_verify('JBSWY3DPEHPK3PXP', '123456', now(), 1, -6)$$),
  ($$SELECT auth.totp_verify('JBSWY3DPEHPK3PXP', '123456', now(), 1, 6, -2147483648)$$),
  ($$SELECT auth.totp_generate('JBSWY3DPEHPK3PXP', now(), 2147483647)$$),
  ($$SELECT auth.totp_generate('JBSWY3DPEHPK3PXP', '-infinity')$$),
  ($$SELECT auth.totp_generate('JBSWY3DPEHPK3PXP', '4713-01-01 BC')$$),
  ($$SELECT auth.totp_generate('JBSWY3DPEHPK3PXP', now(), 6, 30, repeat('SHA1', 2560))$$),
  ($$SELECT auth.totp_generate('JBSWY3DPEHPK3PXP', now(), 6, 30, 'ＳＨＡ１')$$),
  ($$SELECT auth.hotp_generate('JBSWY3DPEHPK3PXP', -9223372036854775808)$$),
  ($$SELECT auth.hotp_generate('JBSWY3DPEHPK3PXP', 9223372036854775807)$$),
  ($$SELECT auth.generate_secret(-1)$$),
  ($$SELECT auth.generate_secret(2147483647)$$),
  -- otpauth URIs and QR data
  ($$SELECT auth.otpauth_uri('JBSWY3DPEHPK3PXP', repeat('a', 10240), 'ACME') LIKE 'otpauth://%'$$),
  ($$SELECT auth.otpauth_uri('JBSWY3DPEHPK3PXP', 'bob' || chr(0 + 1) || 'x', 'ACME') LIKE '%bob%01x%'$$),
  ($$SELECT auth.otpauth_uri('JBSWY3DPEHPK3PXP', '   ', 'ACME')$$),
  ($$SELECT auth.otpauth_parse(repeat('x', 10240))$$),
  ($$SELECT auth.otpauth_parse('otpauth://totp/a?secret=JBSWY3DP&period=99999999999999999999')$$),
  ($$SELECT auth.otpauth_parse('otpauth://totp/a?secret=JBSWY3DP&counter=1')::text LIKE '%totp%'$$),
  ($$SELECT auth.otpauth_parse('otpauth://totp/%C3%28?secret=JBSWY3DP')$$),
  ($$SELECT auth.otpauth_parse('OTPAUTH://TOTP/a?SECRET=jbswy3dp')::text LIKE '%JBSWY3DP%'$$),
  ($$SELECT length(auth.qr_text('')) > 0$$),
  ($$SELECT auth.qr_svg(repeat('é', 5000))$$),
  -- enrollment
  ($$SELECT auth.enroll_totp('00000000-0000-0000-0000-0000000000b1', repeat('n', 10240), 'AC:ME')$$),
  ($$SELECT auth.enroll_totp('00000000-0000-0000-0000-0000000000b1', NULL, NULL, 'a:b')$$),
  ($$SELECT auth.enroll_phone('00000000-0000-0000-0000-0000000000b1', '+1 415 555 2671')$$),
  ($$SELECT auth.enroll_phone('00000000-0000-0000-0000-0000000000b1', '+١٤١٥٥٥٥٢٦٧١')$$),
  ($$SELECT auth.enroll_phone('00000000-0000-0000-0000-0000000000b1', repeat('+1', 5120))$$),
  ($$SELECT auth.enroll_phone('00000000-0000-0000-0000-0000000000b1', '')$$),
  -- challenges and verification
  ($$SELECT auth.create_challenge(NULL, '::1')$$),
  ($$SELECT auth.create_challenge('00000000-0000-0000-0000-0000000000ff', '::1')$$),
  (format($$SELECT auth.verify_challenge(%L, repeat('9', 10240))$$, :'c')),
  (format($$SELECT auth.verify_challenge(%L, '١٢٣٤٥٦')$$, :'c')),
  (format($$SELECT auth.verify_challenge(%L, '')$$, :'c')),
  (format($$SELECT auth.verify_challenge(%L, '123456', '10.0.0.2')$$, :'c')),
  (format($$SELECT auth.verify_challenge(%L, '123456', '10.0.0.1/8')$$, :'c')),
  ($$SELECT auth.verify_challenge('00000000-0000-0000-0000-0000000000ff', '123456')$$),
  ($$SELECT auth.verify_factor('00000000-0000-0000-0000-0000000000ff', '123456')$$),
  ($$SELECT auth.verify_factor(NULL, '123456')$$),
  -- claims and cleanup
  ($$SELECT auth.record_amr('00000000-0000-0000-0000-0000000000aa', repeat('x', 10240))$$),
  ($$SELECT auth.record_amr('00000000-0000-0000-0000-0000000000aa', '')$$),
  ($$SELECT auth.record_amr('00000000-0000-0000-0000-0000000000aa', 'totp ')$$),
  ($$SELECT auth.record_amr('00000000-0000-0000-0000-0000000000aa', NULL)$$),
  ($$SELECT auth.session_aal(NULL) IS NULL$$),
  ($$SELECT auth.session_amr(NULL)$$),
  ($$SELECT auth.cleanup_challenges('-100 years')$$),
  ($$SELECT auth.cleanup_challenges('1 hour', -5)$$),
  ($$SELECT auth.cleanup_challenges('1000000 years', 2147483647)$$),
  ($$SELECT auth.unenroll_factor(NULL)$$),
  -- hardening: unlock, rotation
  ($$SELECT auth.unlock_factor(NULL)$$),
  ($$SELECT auth.unlock_factor('00000000-0000-0000-0000-0000000000ff')$$),
  ($$SELECT auth.rotate_secrets(0)$$),
  ($$SELECT auth.rotate_secrets(-2147483648)$$),
  -- session functions
  ($$SELECT auth.mfa_verified_within('-1 microsecond')$$),
  ($$SELECT auth.mfa_verified_within('178000000 years')$$),
  ($$SELECT auth.mfa_verify(repeat('1', 10240))$$),
  ($$SELECT auth.mfa_verify('')$$),
  ($$SELECT auth.unenroll_my_factor('00000000-0000-0000-0000-0000000000ff')$$),
  ($$SELECT auth.role_user_id(repeat('r', 100)::name) IS NOT NULL$$),
  -- length caps, checked before anything is allocated for the input (54000)
  ($$SELECT auth.qr_text(repeat('A1', 1000000))$$),
  ($$SELECT auth.qr_svg(repeat('9', 5597))$$),
  ($$SELECT auth.otpauth_parse(repeat('x', 65537))$$),
  ($$SELECT auth.totp_verify(repeat('A', 65537), '123456')$$),
  ($$SELECT auth.otpauth_uri('JBSWY3DPEHPK3PXP', 'alice', repeat('i', 2332))$$),
  ($$SELECT auth.enroll_totp('00000000-0000-0000-0000-0000000000b1', account_name => repeat('a', 2332))$$),
  ($$SELECT auth.enroll_totp('00000000-0000-0000-0000-0000000000b1', repeat('n', 1025), 'ACME')$$),
  ($$SELECT auth.enroll_my_totp(issuer => repeat('i', 100000))$$),
  ($$SELECT auth.enroll_phone('00000000-0000-0000-0000-0000000000b1', '+14155552671', repeat('n', 1025))$$),
  -- maintenance steps
  ($$SELECT auth.cleanup_challenges_batch(NULL)$$),
  ($$SELECT auth.cleanup_challenges_batch('infinity', 0)$$),
  ($$SELECT auth.cleanup_challenges_batch('-infinity')$$),
  -- recovery codes and WebAuthn: NULLs, counts out of range, huge or malformed input
  ($$SELECT auth.generate_recovery_codes(NULL, NULL)$$),
  ($$SELECT auth.generate_recovery_codes('00000000-0000-0000-0000-0000000000b1', NULL, -2147483648)$$),
  ($$SELECT auth.generate_recovery_codes('00000000-0000-0000-0000-0000000000b1', NULL, 2147483647)$$),
  ($$SELECT auth.verify_recovery_code('00000000-0000-0000-0000-0000000000b1', repeat('7', 10240))$$),
  ($$SELECT auth.verify_recovery_code('00000000-0000-0000-0000-0000000000b1', NULL)$$),
  ($$SELECT auth.delete_recovery_codes(NULL)$$),
  ($$SELECT auth.verify_webauthn(NULL, '{}')$$),
  ($$SELECT auth.verify_webauthn('00000000-0000-0000-0000-0000000000b1', repeat('[', 5000)::jsonb)$$),
  ($$SELECT auth.enroll_webauthn('00000000-0000-0000-0000-0000000000b1', repeat('n', 10240))$$);

-- Each case runs once, in order.
CREATE TEMP TABLE outcomes (n int, outcome text);
DO $$
DECLARE m record;
BEGIN
  FOR m IN SELECT n, q FROM matrix ORDER BY n LOOP
    INSERT INTO outcomes VALUES (m.n, pg_temp.outcome(m.q));
  END LOOP;
END $$;
SELECT n, outcome FROM outcomes ORDER BY n;
-- Summary: how many cases, and that none is an internal error or carries panic text.
SELECT count(*) AS cases,
       count(*) FILTER (WHERE outcome ~ '^(XX|58)') AS internal_errors,
       count(*) FILTER (WHERE outcome ~* 'panic|unwrap|rust|backtrace') AS panic_texts
  FROM outcomes;
-- No refused call left a row behind.
SELECT (SELECT count(*) FROM auth.mfa_factors) - :factors_before AS new_factors,
       (SELECT count(*) FROM auth.mfa_challenges) - :challenges_before AS new_challenges,
       (SELECT count(*) FROM auth.mfa_amr_claims) - :claims_before AS new_claims;
SELECT auth.unenroll_factor(:'f');
