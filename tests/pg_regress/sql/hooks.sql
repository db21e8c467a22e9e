-- The policy hooks (mfa_auth.verification_hook, mfa_auth.enrollment_hook) and the
-- re-verification window (mfa_auth.reverify_window): who may set them, which function is
-- called and as whom, what continue / reject / a fault do, and what a rollback keeps.
-- Over real connections (PgBouncer, a database owner, PGOPTIONS): tests/e2e/test_hooks.py.
-- (Warnings are left out: the no-master-key one differs by configuration.)
SET client_min_messages = error;
-- The library is loaded first: before it is (not preloaded), a SET only makes a placeholder
-- that the library checks when it loads (a non-superuser's is then refused with a warning).
SELECT auth.generate_secret() IS NOT NULL AS library_loaded;
CREATE SCHEMA hooks;
CREATE TABLE hooks.seen (n serial, hook text, event jsonb, who text);
-- A hook that records what it saw and as whom, and answers what hooks.answer says.
CREATE TABLE hooks.answer (decision jsonb);
INSERT INTO hooks.answer VALUES ('{"decision": "continue"}');
CREATE FUNCTION hooks.verify(event jsonb) RETURNS jsonb LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO hooks.seen (hook, event, who) VALUES ('verify', event, current_user);
  RETURN (SELECT decision FROM hooks.answer);
END $$;
-- Waits until the audit writer has taken every queued event, and a little more for its
-- commit (with the library not preloaded the events are inserted at once: nothing to wait for).
CREATE FUNCTION hooks.settle() RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  FOR i IN 1..250 LOOP
    EXIT WHEN (SELECT queued FROM auth.audit_status()) = 0;
    PERFORM pg_sleep(0.02);
  END LOOP;
  PERFORM pg_sleep(0.3);
END $$;
CREATE FUNCTION hooks.enroll(event jsonb) RETURNS jsonb LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO hooks.seen (hook, event, who) VALUES ('enroll', event, current_user);
  RETURN (SELECT decision FROM hooks.answer);
END $$;

-- 1. The setting's value: schema-qualified, an existing function (jsonb) in this database.
SELECT sqlstate_of($$SET mfa_auth.verification_hook = 'verify'$$);
SELECT sqlstate_of($$SET mfa_auth.verification_hook = 'hooks.verify(jsonb)'$$);
SELECT sqlstate_of($$SET mfa_auth.verification_hook = 'a.b.c'$$);
SELECT sqlstate_of($$SET mfa_auth.verification_hook = 'hooks.missing'$$);
SELECT sqlstate_of($$SET mfa_auth.verification_hook = 'hooks.verify'$$);
SELECT name, setting, context FROM pg_settings WHERE name IN ('mfa_auth.verification_hook', 'mfa_auth.enrollment_hook', 'mfa_auth.reverify_window') ORDER BY name;

-- 2. Only a superuser sets or clears them: SET, SET LOCAL, set_config, ALTER ROLE for oneself.
CREATE ROLE hook_plain LOGIN;
SET ROLE hook_plain;
SELECT sqlstate_of($$SET mfa_auth.verification_hook = ''$$) AS plain_clears;
SELECT sqlstate_of($$SET LOCAL mfa_auth.verification_hook = ''$$) AS plain_clears_locally;
SELECT sqlstate_of($$SELECT set_config('mfa_auth.enrollment_hook', 'hooks.enroll', false)$$) AS plain_sets;
SELECT sqlstate_of($$SET mfa_auth.reverify_window = 0$$) AS plain_turns_off_reverify;
SELECT sqlstate_of($$ALTER ROLE hook_plain SET mfa_auth.verification_hook = ''$$) AS plain_alter_role;
RESET ROLE;
SHOW mfa_auth.verification_hook;

-- 3. Continue: the verification goes on as today; the event has Supabase Auth's fields and
-- ours; the hook runs as its owner (here the superuser that created it).
\set u '00000000-0000-0000-0000-00000000e001'
\set s1 '00000000-0000-0000-0000-00000000f001'
\set s2 '00000000-0000-0000-0000-00000000f002'
SELECT factor_id AS t, secret AS s FROM auth.enroll_totp(:'u') \gset
SELECT challenge_id AS c FROM auth.create_challenge(:'t', '10.0.0.1') \gset
SELECT auth.verify_challenge(:'c', auth.totp_generate(:'s'), '10.0.0.1', :'s1') AS verified_in_s1;
SELECT (SELECT array_agg(k ORDER BY k) FROM jsonb_object_keys(event) k) AS event_keys,
       event->>'factor_type' AS factor_type, event->'valid' AS valid, event->>'ip_address' AS ip,
       event->>'session_id' = :'s1' AS its_session, event->>'challenge_id' = :'c' AS its_challenge,
       event->>'user_id' = :'u' AS its_user, event->>'factor_id' = :'t' AS its_factor,
       event->'failed_attempts' AS failed_attempts, who
  FROM hooks.seen ORDER BY n DESC LIMIT 1;
-- A wrong code: the hook sees valid = false and the failure counted so far (this one included).
SELECT challenge_id AS c FROM auth.create_challenge(:'t', '10.0.0.1') \gset
SELECT auth.verify_challenge(:'c', '000000', '10.0.0.1', :'s2') AS wrong_code;
SELECT event->'valid' AS valid, event->'failed_attempts' AS failed_attempts FROM hooks.seen ORDER BY n DESC LIMIT 1;

-- 4. Reject: 28000 with the hook's message (control characters removed, length capped);
-- the user is signed out everywhere (s1's aal2 is gone); nothing of the verification is
-- recorded (the challenge stays unverified); the rejection is in the trail.
UPDATE hooks.answer SET decision = jsonb_build_object('decision', 'reject', 'message', E'Too many\nattempts\u001b[31m ' || repeat('x', 500));
SELECT auth.session_aal(:'s1', :'u') AS s1_before;
SELECT challenge_id AS c FROM auth.create_challenge(:'t', '10.0.0.1') \gset
\set VERBOSITY default
SELECT left(sqlstate_of(format($$SELECT auth.verify_challenge(%L, %L, '10.0.0.1', %L)$$, :'c', auth.totp_generate(:'s'), :'s2')), 60) AS rejected;
SELECT length(sqlstate_of(format($$SELECT auth.verify_challenge(%L, %L, '10.0.0.1', %L)$$, :'c', auth.totp_generate(:'s'), :'s2'))) AS capped_length;
SELECT auth.session_aal(:'s1', :'u') AS s1_after, auth.session_aal(:'s2', :'u') AS s2_after;
SELECT verified_at IS NULL AS challenge_unverified FROM auth.mfa_challenges WHERE id = :'c';
SELECT event, outcome, payload->'traits'->>'valid' AS valid FROM auth.mfa_audit_log
 WHERE event = 'verification_rejected' AND factor_id = :'t' ORDER BY created_at DESC LIMIT 1;
-- A caller who rolls back after the reject keeps the rejection: the same right code, retried
-- in a transaction that rolls back and again outside, is rejected each time, never a success.
BEGIN;
SELECT left(sqlstate_of(format($$SELECT auth.verify_challenge(%L, %L, '10.0.0.1', %L)$$, :'c', auth.totp_generate(:'s'), :'s2')), 14) AS in_transaction;
ROLLBACK;
SELECT left(sqlstate_of(format($$SELECT auth.verify_challenge(%L, %L, '10.0.0.1', %L)$$, :'c', auth.totp_generate(:'s'), :'s2')), 14) AS retried;
SELECT count(*) AS successes_since_reject FROM auth.mfa_audit_log
 WHERE factor_id = :'t' AND event = 'verification' AND outcome = 'success'
   AND created_at > (SELECT min(created_at) FROM auth.mfa_audit_log WHERE factor_id = :'t' AND event = 'verification_rejected');
-- A rejected attempt stays counted (a right code included): after max_failed_attempts the
-- factor locks as after wrong codes. Lifted here, and the limit raised for what follows.
SELECT sqlstate_of(format($$SELECT auth.create_challenge(%L, '10.0.0.1')$$, :'t')) AS locked_after_rejects;
SELECT auth.unlock_factor(:'t');
SET mfa_auth.max_failed_attempts = 1000;
-- Every factor kind goes through it: a recovery code (its user's set) is rejected the same way.
UPDATE hooks.answer SET decision = '{"decision": "continue"}';
SELECT challenge_id AS c FROM auth.create_challenge(:'t', '10.0.0.1') \gset
SELECT auth.verify_challenge(:'c', auth.totp_generate(:'s', now() + interval '30 seconds'), '10.0.0.1', :'s1') AS s1_again;
SELECT code AS rc FROM auth.generate_recovery_codes(:'u', :'s1', 4) code LIMIT 1 \gset
UPDATE hooks.answer SET decision = '{"decision": "reject", "message": "no recovery today"}';
SELECT sqlstate_of(format($$SELECT auth.verify_recovery_code(%L, %L, NULL, %L)$$, :'u', :'rc', :'s2')) AS recovery_rejected;
SELECT payload->>'factor_type' AS factor_type, payload->'traits'->>'valid' AS valid FROM auth.mfa_audit_log
 WHERE event = 'verification_rejected' AND user_id = :'u' ORDER BY created_at DESC LIMIT 1;
SELECT auth.session_aal(:'s1', :'u') AS s1_signed_out_again;
SELECT remaining FROM auth.recovery_codes_status(:'u');

-- 5. Failing closed: 39000 for a hook that raises, returns NULL, malformed JSON, an unknown
-- decision, no decision, runs past statement_timeout, or verifies from inside; never continue.
CREATE FUNCTION hooks.raises(event jsonb) RETURNS jsonb LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'boom' USING ERRCODE = 'P0001'; END $$;
CREATE FUNCTION hooks.null_answer(event jsonb) RETURNS jsonb LANGUAGE sql AS $$ SELECT NULL::jsonb $$;
CREATE FUNCTION hooks.array_answer(event jsonb) RETURNS jsonb LANGUAGE sql AS $$ SELECT '["continue"]'::jsonb $$;
CREATE FUNCTION hooks.unknown(event jsonb) RETURNS jsonb LANGUAGE sql AS $$ SELECT '{"decision": "allow"}'::jsonb $$;
CREATE FUNCTION hooks.no_decision(event jsonb) RETURNS jsonb LANGUAGE sql AS $$ SELECT '{"error": {"http_code": 429, "message": "slow"}}'::jsonb $$;
CREATE FUNCTION hooks.slow(event jsonb) RETURNS jsonb LANGUAGE plpgsql AS $$ BEGIN PERFORM pg_sleep(5); RETURN '{"decision": "continue"}'; END $$;
CREATE FUNCTION hooks.recursive(event jsonb) RETURNS jsonb LANGUAGE plpgsql AS $$
BEGIN
  PERFORM auth.verify_challenge((event->>'challenge_id')::uuid, '123456', NULL, NULL);
  RETURN '{"decision": "continue"}';
END $$;
CREATE FUNCTION hooks.returns_text(event jsonb) RETURNS text LANGUAGE sql AS $$ SELECT '{"decision": "continue"}' $$;
CREATE FUNCTION hooks.try(hook text, code text DEFAULT NULL) RETURNS text LANGUAGE plpgsql AS $$
DECLARE c uuid; r text;
BEGIN
  EXECUTE format('SET mfa_auth.verification_hook = %L', hook);
  SELECT challenge_id INTO c FROM auth.create_challenge((SELECT id FROM hooks.target), '10.0.0.1');
  r := public.sqlstate_of(format($q$SELECT auth.verify_challenge(%L, %L)$q$, c, coalesce(code, '000000')));
  RETURN left(r, 90);
END $$;
CREATE TABLE hooks.target AS SELECT factor_id AS id FROM auth.enroll_totp('00000000-0000-0000-0000-00000000e0f0');
SELECT hooks.try('hooks.raises') AS raises;
SELECT hooks.try('hooks.null_answer') AS null_answer;
SELECT hooks.try('hooks.array_answer') AS array_answer;
SELECT hooks.try('hooks.unknown') AS unknown_decision;
SELECT hooks.try('hooks.no_decision') AS no_decision;
SELECT hooks.try('hooks.recursive') AS recursive;
SELECT sqlstate_of($$SET mfa_auth.verification_hook = 'hooks.returns_text'$$) AS wrong_return_type_set;
SELECT hooks.try('hooks.returns_text') AS wrong_return_type;
SET statement_timeout = '300ms';
SELECT hooks.try('hooks.slow') AS past_statement_timeout;
RESET statement_timeout;
-- Each fault is in the trail (outcome error; the recursive hook's twice: its own call's and
-- the one it made), and none was a success.
SELECT hooks.settle();
SELECT outcome, count(*) FROM auth.mfa_audit_log
 WHERE factor_id = (SELECT id FROM hooks.target) AND event IN ('hook_failed', 'verification') GROUP BY 1 ORDER BY 1;
SET mfa_auth.verification_hook = 'hooks.verify';

-- 6. Which function: resolved when set. A same-named function in a schema first on the
-- search_path does not redirect it; a function dropped and created again is not followed
-- (fail closed) until a superuser sets the setting again.
UPDATE hooks.answer SET decision = '{"decision": "continue"}';
CREATE SCHEMA evil;
CREATE FUNCTION evil.verify(event jsonb) RETURNS jsonb LANGUAGE sql AS $$ SELECT '{"decision": "reject", "message": "evil"}'::jsonb $$;
SET search_path = evil, hooks, public;
SELECT hooks.try('hooks.verify') AS with_evil_first_on_path;
RESET search_path;
ALTER FUNCTION hooks.verify(jsonb) RENAME TO verify_old;
CREATE FUNCTION hooks.verify(event jsonb) RETURNS jsonb LANGUAGE sql AS $$ SELECT '{"decision": "reject", "message": "replaced"}'::jsonb $$;
SELECT left(sqlstate_of(format($$SELECT auth.verify_challenge(%L, '000000', '10.0.0.1')$$, (SELECT challenge_id FROM auth.create_challenge(:'t', '10.0.0.1')))), 60) AS after_replacement;
DROP FUNCTION hooks.verify_old(jsonb);
SELECT left(sqlstate_of(format($$SELECT auth.verify_challenge(%L, '000000', '10.0.0.1')$$, (SELECT challenge_id FROM auth.create_challenge(:'t', '10.0.0.1')))), 50) AS after_drop;
SET mfa_auth.verification_hook = 'hooks.verify';
SELECT left(sqlstate_of(format($$SELECT auth.verify_challenge(%L, '000000', '10.0.0.1')$$, (SELECT challenge_id FROM auth.create_challenge(:'t', '10.0.0.1')))), 40) AS set_again;
DROP FUNCTION hooks.verify(jsonb);
CREATE FUNCTION hooks.verify(event jsonb) RETURNS jsonb LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO hooks.seen (hook, event, who) VALUES ('verify', event, current_user);
  RETURN (SELECT decision FROM hooks.answer);
END $$;
SET mfa_auth.verification_hook = 'hooks.verify';

-- 7. A hook owned by an ordinary role runs with that role's rights only: no auth table, no
-- key setting, no SET ROLE; current_user is its owner.
CREATE ROLE hook_owner;
CREATE SCHEMA owned AUTHORIZATION hook_owner;
GRANT USAGE ON SCHEMA auth TO hook_owner;
SET ROLE hook_owner;
CREATE TABLE owned.probes (probe text, result text);
CREATE FUNCTION owned.probe(event jsonb) RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE r text;
BEGIN
  INSERT INTO owned.probes VALUES ('current_user', current_user::text), ('session_user', session_user::text);
  BEGIN PERFORM secret FROM auth.mfa_factors LIMIT 1; r := 'read'; EXCEPTION WHEN OTHERS THEN r := SQLSTATE; END;
  INSERT INTO owned.probes VALUES ('select auth.mfa_factors', r);
  BEGIN PERFORM code_hash FROM auth.mfa_recovery_codes LIMIT 1; r := 'read'; EXCEPTION WHEN OTHERS THEN r := SQLSTATE; END;
  INSERT INTO owned.probes VALUES ('select auth.mfa_recovery_codes', r);
  BEGIN r := current_setting('mfa_auth.encryption_keys'); r := CASE WHEN r IN ('', '(hidden)') THEN 'hidden' ELSE 'shown' END; EXCEPTION WHEN OTHERS THEN r := SQLSTATE; END;
  INSERT INTO owned.probes VALUES ('mfa_auth.encryption_keys', r);
  BEGIN PERFORM pg_read_file('postgresql.conf'); r := 'read'; EXCEPTION WHEN OTHERS THEN r := SQLSTATE; END;
  INSERT INTO owned.probes VALUES ('pg_read_file', r);
  BEGIN SET ROLE postgres; r := 'switched'; EXCEPTION WHEN OTHERS THEN r := SQLSTATE; END;
  INSERT INTO owned.probes VALUES ('set role postgres', r);
  BEGIN PERFORM auth.unenroll_factor((event->>'factor_id')::uuid); r := 'unenrolled'; EXCEPTION WHEN OTHERS THEN r := SQLSTATE; END;
  INSERT INTO owned.probes VALUES ('auth.unenroll_factor', r);
  RETURN '{"decision": "continue"}';
END $$;
RESET ROLE;
SET mfa_auth.verification_hook = 'owned.probe';
SELECT challenge_id AS c FROM auth.create_challenge(:'t', '10.0.0.1') \gset
SELECT auth.verify_challenge(:'c', '000000', '10.0.0.1') AS wrong_code_with_probe;
SELECT probe, result FROM owned.probes ORDER BY probe;
SELECT count(*) AS factor_still_there FROM auth.mfa_factors WHERE id = :'t';
SET mfa_auth.verification_hook = 'hooks.verify';

-- 8. The enrollment hook: before any factor is created (service and self-service, TOTP,
-- phone, WebAuthn, recovery codes); reject creates nothing (42501 with the message).
SET mfa_auth.enrollment_hook = 'hooks.enroll';
SET mfa_auth.webauthn_rp_id = 'example.com';
SET mfa_auth.webauthn_origins = 'https://app.example.com';
UPDATE hooks.answer SET decision = '{"decision": "continue"}';
\set u2 '00000000-0000-0000-0000-00000000e002'
SELECT count(*) AS totp FROM auth.enroll_totp(:'u2', 'laptop');
SELECT auth.enroll_phone(:'u2', '+447700900123', 'work') IS NOT NULL AS phone;
SELECT auth.enroll_webauthn(:'u2', 'key') IS NOT NULL AS webauthn;
SELECT event->>'factor_type' AS factor_type, event->>'friendly_name' AS friendly_name, event->>'phone' AS phone,
       event->'session_id' AS session_id, event->'aal' AS aal, event->>'user_id' = :'u2' AS its_user, who,
       (SELECT array_agg(k ORDER BY k) FROM jsonb_object_keys(event) k) AS keys
  FROM hooks.seen WHERE hook = 'enroll' ORDER BY n;
UPDATE hooks.answer SET decision = '{"decision": "reject", "message": "enrollment closed"}';
SELECT sqlstate_of(format($$SELECT auth.enroll_totp(%L)$$, :'u2')) AS totp_rejected;
SELECT sqlstate_of(format($$SELECT auth.enroll_phone(%L, '+447700900124')$$, :'u2')) AS phone_rejected;
SELECT sqlstate_of(format($$SELECT auth.enroll_webauthn(%L)$$, :'u2')) AS webauthn_rejected;
SELECT sqlstate_of(format($$SELECT auth.generate_recovery_codes(%L, %L)$$, :'u', :'s1')) AS recovery_rejected;
SELECT count(*) AS factors_of_u2 FROM auth.mfa_factors WHERE user_id = :'u2';
SELECT hooks.settle();
SELECT event, outcome, payload->>'factor_type' AS factor_type, count(*) FROM auth.mfa_audit_log WHERE event = 'enrollment_rejected' GROUP BY 1, 2, 3 ORDER BY 3;
-- Self-service (database-session mode): the event carries the session and its aal.
CREATE ROLE hook_self;
GRANT USAGE ON SCHEMA auth TO hook_self;
UPDATE hooks.answer SET decision = '{"decision": "continue"}';
SET ROLE hook_self;
SELECT count(*) AS enrolled_mine FROM auth.enroll_my_totp('mine');
RESET ROLE;
SELECT event->>'session_id' IS NOT NULL AS has_session, event->>'aal' AS aal FROM hooks.seen WHERE hook = 'enroll' ORDER BY n DESC LIMIT 1;
UPDATE hooks.answer SET decision = '{"decision": "reject", "message": "not you"}';
SET ROLE hook_self;
SELECT sqlstate_of($$SELECT auth.enroll_my_totp('second')$$) AS self_rejected;
RESET ROLE;
RESET mfa_auth.enrollment_hook;

-- 9. The re-verification window: self-service changes need a verification within it.
UPDATE hooks.answer SET decision = '{"decision": "continue"}';
RESET mfa_auth.verification_hook;
SET ROLE hook_self;
SELECT factor_id AS mt, secret AS ms FROM auth.enroll_my_totp('reverify') \gset
RESET ROLE;
SELECT id AS mine FROM auth.mfa_factors WHERE friendly_name = 'mine' \gset
SET ROLE hook_self;
SELECT auth.unenroll_my_factor(:'mine');
SELECT auth.mfa_verify(auth.totp_generate(:'ms'), :'mt') AS verified;
RESET ROLE;
SET mfa_auth.reverify_window = '5min';
SHOW mfa_auth.reverify_window;
-- Verified 1 minute ago: allowed. 1 hour ago: refused (42501, hint).
UPDATE auth.mfa_amr_claims SET updated_at = now() - interval '1 minute'
 WHERE session_id IN (SELECT session_id FROM auth.mfa_verified_claims WHERE factor_id = :'mt');
SET ROLE hook_self;
SELECT count(*) AS enrolled_1_min_after FROM auth.enroll_my_totp('fresh');
RESET ROLE;
UPDATE auth.mfa_amr_claims SET updated_at = now() - interval '1 hour'
 WHERE session_id IN (SELECT session_id FROM auth.mfa_verified_claims WHERE factor_id = :'mt');
SET ROLE hook_self;
SELECT sqlstate_of($$SELECT auth.enroll_my_totp('stale')$$) AS enroll_1_hour_after;
SELECT sqlstate_of(format($$SELECT auth.unenroll_my_factor(%L)$$, (SELECT factor_id FROM auth.my_factors() WHERE friendly_name = 'fresh'))) AS unenroll_1_hour_after;
SELECT sqlstate_of($$SELECT auth.generate_my_recovery_codes()$$) AS recovery_1_hour_after;
-- Verifying again makes the session fresh.
SELECT auth.mfa_verify(auth.totp_generate(:'ms', now() + interval '30 seconds'), :'mt') AS verified_again;
SELECT count(*) AS recovery_after_reverify FROM auth.generate_my_recovery_codes();
RESET ROLE;
-- The service functions are not affected.
UPDATE auth.mfa_amr_claims SET updated_at = now() - interval '1 hour'
 WHERE session_id IN (SELECT session_id FROM auth.mfa_verified_claims WHERE factor_id = :'mt');
SELECT count(*) AS service_enroll FROM auth.enroll_totp(auth.role_user_id('hook_self'), 'service');
RESET mfa_auth.reverify_window;
SET ROLE hook_self;
SELECT count(*) AS enroll_window_off FROM auth.enroll_my_totp('window off');
RESET ROLE;

-- 10. auth.sign_out_user: the same global sign-out, as a service function (no grant to PUBLIC).
\set u3 '00000000-0000-0000-0000-00000000e003'
\set s3 '00000000-0000-0000-0000-00000000f003'
SELECT factor_id AS t3, secret AS s3secret FROM auth.enroll_totp(:'u3') \gset
SELECT challenge_id AS c FROM auth.create_challenge(:'t3', '10.0.0.1') \gset
SELECT auth.verify_challenge(:'c', auth.totp_generate(:'s3secret'), NULL, :'s3') AS verified_in_s3;
SELECT auth.record_amr(:'s3', 'password') IS NOT NULL AS password_claim;
SET ROLE hook_plain;
SELECT left(sqlstate_of(format($$SELECT auth.sign_out_user(%L)$$, :'u3')), 5) AS plain_signs_out;
RESET ROLE;
SELECT auth.session_aal(:'s3', :'u3') AS before_sign_out;
SELECT auth.sign_out_user(:'u3') AS claims_removed;
SELECT auth.session_aal(:'s3', :'u3') AS after_sign_out, (SELECT count(*) FROM auth.mfa_amr_claims WHERE session_id = :'s3') AS claims_left;
SELECT auth.sign_out_user(:'u3') AS again;

-- What this test enrolled goes (later tests count recovery codes), and the roles are the
-- cluster's: removed for the next run.
RESET ROLE;
RESET mfa_auth.verification_hook;
SELECT count(auth.unenroll_factor(id)) >= 0 AS removed FROM auth.mfa_factors
 WHERE user_id IN (:'u', :'u2', :'u3', '00000000-0000-0000-0000-00000000e0f0', auth.role_user_id('hook_self'))
   AND factor_type <> 'recovery_code';
SELECT count(*) AS codes_left FROM auth.mfa_recovery_codes;
DROP SCHEMA owned CASCADE;
DROP OWNED BY hook_plain, hook_owner, hook_self;
DROP ROLE hook_plain, hook_owner, hook_self;
