-- Crash-test database: the extension, factors with known secrets, and a log of accepted
-- verifications written in the same transaction as each verification (so the log is exactly
-- what committed).
CREATE EXTENSION mfa_auth;
CREATE EXTENSION amcheck;
CREATE SCHEMA crash;
CREATE TABLE crash.factors (n int PRIMARY KEY, factor_id uuid NOT NULL, secret text NOT NULL);
CREATE TABLE crash.accepted (
    challenge_id uuid NOT NULL,
    factor_id    uuid NOT NULL,
    step         bigint,
    session_id   uuid NOT NULL
);
INSERT INTO crash.factors
SELECT n, e.factor_id, e.secret
  FROM generate_series(1, :factors) n, LATERAL auth.enroll_totp(gen_random_uuid(), 'crash ' || n) e;

-- One verification: a challenge, then a right code (of the current or an adjacent step), a
-- wrong code, or an old code (a replay), verified with a new session id. Errors (a factor
-- locked by earlier failures, say) are returned, not raised, so pgbench clients keep going.
CREATE FUNCTION crash.step(n int, kind int) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
  f  crash.factors;
  c  uuid;
  s  uuid := gen_random_uuid();
  code text;
  ok boolean;
BEGIN
  SELECT * INTO f FROM crash.factors WHERE crash.factors.n = step.n;
  SELECT challenge_id INTO c FROM auth.create_challenge(f.factor_id, '10.0.0.1');
  code := CASE kind
    WHEN 1 THEN auth.totp_generate(f.secret, now() + make_interval(secs => 30 * (floor(random() * 3) - 1)))
    WHEN 2 THEN lpad(floor(random() * 1000000)::int::text, 6, '0')
    ELSE auth.totp_generate(f.secret, now() - interval '60 seconds')
  END;
  ok := auth.verify_challenge(c, code, NULL, s);
  IF ok THEN
    INSERT INTO crash.accepted
    SELECT c, f.factor_id, last_totp_step, s FROM auth.mfa_factors WHERE id = f.factor_id;
  END IF;
  RETURN CASE WHEN ok THEN 'accepted' ELSE 'rejected' END;
EXCEPTION WHEN others THEN
  RETURN SQLSTATE;
END $$;

-- Wrong codes are two thirds of the load: a high limit keeps most factors verifiable, and
-- the lockouts that do happen end quickly.
ALTER DATABASE mfa_auth_crash SET mfa_auth.max_failed_attempts = 1000;
ALTER DATABASE mfa_auth_crash SET mfa_auth.lockout_duration = 1;
