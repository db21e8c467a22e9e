-- Stateless OTP functions: RFC vectors, round trips and every argument check.

-- RFC 4226 Appendix D (secret "12345678901234567890").
SELECT c AS counter, auth.hotp_generate('GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ', c) AS code
  FROM generate_series(0, 9) c;

-- RFC 6238 Appendix B: 8 digits, seeds of 20/32/64 bytes for SHA1/SHA256/SHA512.
WITH seed(alg, secret) AS (VALUES
   ('SHA1',   'GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ'),
   ('SHA256', 'GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQGEZA'),
   ('SHA512', 'GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQGEZDGNA')),
 t(unix) AS (VALUES (59), (1111111109), (1111111111), (1234567890), (2000000000), (20000000000))
SELECT unix, alg, auth.totp_generate(secret, to_timestamp(unix), 8, 30, alg) AS code,
       auth.totp_verify(secret, auth.totp_generate(secret, to_timestamp(unix), 8, 30, alg),
                        to_timestamp(unix), 1, 8, 30, alg) = unix / 30 AS verifies
  FROM t, seed ORDER BY unix, alg;

-- The matched step is returned; outside the window, NULL.
SELECT s.offset_steps,
       auth.totp_verify('JBSWY3DPEHPK3PXP',
                        auth.totp_generate('JBSWY3DPEHPK3PXP', to_timestamp(1700000000 + 30 * s.offset_steps)),
                        to_timestamp(1700000000)) - 1700000000 / 30 AS matched_offset
  FROM generate_series(-2, 2) AS s(offset_steps);
-- Codes as people type them.
SELECT auth.totp_verify('jbsw y3dp ehpk 3pxp', '324 550', to_timestamp(1700000000), 0) AS spaced,
       auth.totp_verify('JBSWY3DPEHPK3PXP', '324-550', to_timestamp(1700000000), 0) AS hyphen,
       auth.totp_generate('JBSWY3DPEHPK3PXP', to_timestamp(1700000000)) AS code;
-- Wrong codes and codes of the wrong shape: NULL, never an error.
SELECT auth.totp_verify('JBSWY3DPEHPK3PXP', c, to_timestamp(1700000000)) AS step, c AS code
  FROM unnest(ARRAY['000000', '32455', '3245500', 'abcdef', '', '３２４５５０', '324550x']) c;

-- Secrets of odd lengths, with padding and in lower case.
SELECT auth.totp_generate('MZXW6YQ=', to_timestamp(1234567890)) = auth.totp_generate('mzxw6yq', to_timestamp(1234567890)) AS padding_ignored;
SELECT auth.hotp_generate('AAAAAAAAAAAAAAAA', 0, 10, 'sha512') AS leading_zero_key_10_digits;

-- Secrets and URIs.
SELECT length(auth.generate_secret()) AS default_len, length(auth.generate_secret(32)) AS len_32,
       auth.generate_secret() <> auth.generate_secret() AS fresh,
       auth.generate_secret() ~ '^[A-Z2-7]+$' AS alphabet;
SELECT auth.otpauth_uri('jbsw y3dp ehpk 3pxp', 'alice@example.com', 'ACME Co');
SELECT auth.otpauth_uri('JBSWY3DPEHPK3PXP', 'bob', NULL, 8, 60, 'sha256');
SELECT * FROM auth.otpauth_parse('otpauth://totp/ACME%20Co:alice%40example.com?secret=JBSWY3DPEHPK3PXP&issuer=ACME%20Co&algorithm=SHA1&digits=6&period=30');
SELECT * FROM auth.otpauth_parse('otpauth://hotp/bob?secret=jbswy3dpehpk3pxp&counter=42&digits=8');

-- QR codes.
SELECT auth.qr_text('hello');
SELECT auth.qr_text('hello', invert => true);
SELECT left(auth.qr_svg('hello'), 96) AS svg_head, auth.qr_svg('hello') LIKE '%</svg>' AS closed;

-- Every bad argument: an explicit SQLSTATE and a message naming the argument.
SELECT public.sqlstate_of(q) FROM unnest(ARRAY[
  $$SELECT auth.totp_generate(NULL)$$,
  $$SELECT auth.totp_generate('JBSWY3DPEHPK3PXP', NULL)$$,
  $$SELECT auth.totp_generate('JBSWY3DPEHPK3PXP', now(), NULL)$$,
  $$SELECT auth.totp_generate('JBSWY3DPEHPK3PXP', now(), 6, NULL)$$,
  $$SELECT auth.totp_generate('JBSWY3DPEHPK3PXP', now(), 6, 30, NULL)$$,
  $$SELECT auth.totp_generate('')$$,
  $$SELECT auth.totp_generate('JBSW Y1DP')$$,
  $$SELECT auth.totp_generate('JBSWY3D')$$,
  $$SELECT auth.totp_generate('JBSWY3')$$,
  $$SELECT auth.totp_generate('MY=A')$$,
  $$SELECT auth.totp_generate('JBSWY3DPEHPK3PXP', now(), 5)$$,
  $$SELECT auth.totp_generate('JBSWY3DPEHPK3PXP', now(), 11)$$,
  $$SELECT auth.totp_generate('JBSWY3DPEHPK3PXP', now(), 6, 0)$$,
  $$SELECT auth.totp_generate('JBSWY3DPEHPK3PXP', now(), 6, -30)$$,
  $$SELECT auth.totp_generate('JBSWY3DPEHPK3PXP', now(), 6, 30, 'MD5')$$,
  $$SELECT auth.totp_generate('JBSWY3DPEHPK3PXP', '1969-12-31 23:59:59+00')$$,
  $$SELECT auth.totp_generate('JBSWY3DPEHPK3PXP', 'infinity')$$,
  $$SELECT auth.totp_verify('JBSWY3DPEHPK3PXP', NULL)$$,
  $$SELECT auth.totp_verify('JBSWY3DPEHPK3PXP', '123456', now(), -1)$$,
  $$SELECT auth.totp_verify('JBSWY3DPEHPK3PXP', '123456', now(), 11)$$,
  $$SELECT auth.totp_verify('JBSWY3DPEHPK3PXP', '123456', now(), NULL)$$,
  $$SELECT auth.hotp_generate('JBSWY3DPEHPK3PXP', -1)$$,
  $$SELECT auth.hotp_generate('JBSWY3DPEHPK3PXP', NULL)$$,
  $$SELECT auth.generate_secret(9)$$,
  $$SELECT auth.generate_secret(129)$$,
  $$SELECT auth.generate_secret(NULL)$$,
  $$SELECT auth.otpauth_uri('JBSWY3DPEHPK3PXP', 'a:b', 'ACME')$$,
  $$SELECT auth.otpauth_uri('JBSWY3DPEHPK3PXP', 'alice', 'AC:ME')$$,
  $$SELECT auth.otpauth_uri('JBSWY3DPEHPK3PXP', '', 'ACME')$$,
  $$SELECT auth.otpauth_uri('JBSWY3DPEHPK3PXP', NULL, 'ACME')$$,
  $$SELECT auth.otpauth_parse('https://example.com')$$,
  $$SELECT auth.otpauth_parse('otpauth://totp/alice')$$,
  $$SELECT auth.otpauth_parse('otpauth://totp/alice?secret=JBSWY3DPEHPK3PXP&digits=4')$$,
  $$SELECT auth.otpauth_parse('otpauth://totp/I:alice?secret=JBSWY3DPEHPK3PXP&issuer=J')$$,
  $$SELECT auth.qr_text(repeat('x', 5000))$$,
  $$SELECT auth.qr_text(NULL)$$
]) AS q;

-- No error message ever contains the secret it was given.
SELECT public.sqlstate_of($$SELECT auth.totp_generate('SUPERSECRETVALUE1')$$) LIKE '%SUPERSECRET%' AS leaks_secret;

-- Volatility and parallel safety as documented.
SELECT p.proname, p.provolatile, p.proparallel, p.proisstrict
  FROM pg_catalog.pg_proc p
 WHERE p.pronamespace = 'auth'::regnamespace
   AND p.proname IN ('totp_generate', 'totp_verify', 'hotp_generate', 'generate_secret',
                     'otpauth_uri', 'otpauth_parse', 'qr_text', 'qr_svg')
 ORDER BY 1;
