-- The trust model: aal2 only from a factor the user is entitled to, in the session that
-- verified it. Error paths with their SQLSTATEs; the client tests replay the attacks.

-- 1. Service path: a second factor of a user who has a verified one needs an aal2 session.
SELECT factor_id AS f1, secret AS s1 FROM auth.enroll_totp('00000000-0000-0000-0000-0000000000b1', 'first') \gset
SELECT factor_id AS f2, secret AS s2 FROM auth.enroll_totp('00000000-0000-0000-0000-0000000000b1', 'second') \gset
SELECT challenge_id AS c1 FROM auth.create_challenge(:'f1', '::1') \gset
-- No verified factor yet: the first one is verified in any session, which becomes aal2.
SELECT auth.verify_challenge(:'c1', auth.totp_generate(:'s1'), NULL, '00000000-0000-0000-0000-0000000000e1') AS first_factor;
SELECT auth.session_aal('00000000-0000-0000-0000-0000000000e1', '00000000-0000-0000-0000-0000000000b1') AS for_its_user,
       auth.session_aal('00000000-0000-0000-0000-0000000000e1', '00000000-0000-0000-0000-0000000000b2') AS for_another_user;
SELECT challenge_id AS c2 FROM auth.create_challenge(:'f2', '::1') \gset
SELECT public.sqlstate_of(q) FROM unnest(ARRAY[
  format($$SELECT auth.verify_challenge(%L, %L)$$, :'c2', auth.totp_generate(:'s2')),
  format($$SELECT auth.verify_challenge(%L, %L, NULL, '00000000-0000-0000-0000-0000000000e2')$$, :'c2', auth.totp_generate(:'s2')),
  format($$SELECT auth.verify_factor(%L, %L, NULL, '00000000-0000-0000-0000-0000000000e2')$$, :'f2', auth.totp_generate(:'s2')),
  -- Even a wrong code is refused before it is evaluated: nothing is counted.
  format($$SELECT auth.verify_challenge(%L, '000000')$$, :'c2')
]) AS q;
SELECT status, failed_attempts FROM auth.mfa_factors WHERE id = :'f2';
SELECT count(*) AS claims_of_e2 FROM auth.mfa_amr_claims WHERE session_id = '00000000-0000-0000-0000-0000000000e2';
-- In the aal2 session: verified.
SELECT auth.verify_challenge(:'c2', auth.totp_generate(:'s2'), NULL, '00000000-0000-0000-0000-0000000000e1') AS second_factor;

-- 2. MFA methods are recorded only by verification, bound to the factor's user.
SELECT public.sqlstate_of(q) FROM unnest(ARRAY[
  $$SELECT auth.record_amr('00000000-0000-0000-0000-0000000000e3', 'totp')$$,
  $$SELECT auth.record_amr('00000000-0000-0000-0000-0000000000e3', 'mfa/phone')$$,
  $$SELECT auth.record_amr('00000000-0000-0000-0000-0000000000e3', 'mfa/webauthn')$$
]) AS q;
-- A claim row without its factor binding (as a 0.1.0 record_amr could leave) counts for no one.
INSERT INTO auth.mfa_amr_claims (session_id, authentication_method) VALUES ('00000000-0000-0000-0000-0000000000e3', 'totp');
SELECT auth.record_amr('00000000-0000-0000-0000-0000000000e3', 'password') IS NOT NULL AS password_recorded;
SELECT auth.session_aal('00000000-0000-0000-0000-0000000000e3') AS unbound_claim,
       jsonb_path_query_array(auth.session_amr('00000000-0000-0000-0000-0000000000e3'), '$[*].method') AS methods;

-- 3. Self-service: roles as users, sessions per role.
CREATE ROLE mfa_trust_alice;
CREATE ROLE mfa_trust_bob;
SET ROLE mfa_trust_alice;
SELECT factor_id AS af, secret AS asec FROM auth.enroll_my_totp('phone') \gset
SELECT auth.mfa_verify(auth.totp_generate(:'asec')) AS alice_verified;
SELECT auth.aal() AS alice_aal, auth.session_id() AS alice_session \gset
SELECT :'alice_aal' AS alice_aal;
RESET ROLE;
SET ROLE mfa_trust_bob;
-- Another role: another user and another session, aal1.
SELECT auth.session_id() <> :'alice_session' AS own_session, auth.aal() AS bob_aal, auth.amr() AS bob_amr;
RESET ROLE;
SET ROLE mfa_trust_alice;
SELECT auth.session_id() = :'alice_session' AS alice_session_again, auth.aal() AS alice_aal;
RESET ROLE;
-- A new connection of alice (password only, aal1) can neither add nor remove factors.
\c
SET ROLE mfa_trust_alice;
SELECT auth.aal() AS new_session_aal;
SELECT public.sqlstate_of(q) FROM unnest(ARRAY[
  $$SELECT auth.enroll_my_totp('x')$$,
  format($$SELECT auth.unenroll_my_factor(%L)$$, :'af')
]) AS q;
-- Without database sessions, self-service in database-session mode refuses (never a silent aal1).
RESET ROLE;
SET mfa_auth.database_sessions = off;
SET ROLE mfa_trust_alice;
SELECT auth.session_id() IS NULL AS no_session, auth.aal() AS aal_off;
SELECT public.sqlstate_of(q) FROM unnest(ARRAY[
  $$SELECT auth.mfa_verify('123456')$$,
  $$SELECT auth.enroll_my_totp()$$,
  format($$SELECT auth.unenroll_my_factor(%L)$$, :'af')
]) AS q;
SELECT count(*) AS listing_still_works FROM auth.my_factors();
RESET ROLE;
-- Only a superuser changes it.
CREATE ROLE mfa_trust_plain LOGIN;
SET ROLE mfa_trust_plain;
SELECT public.sqlstate_of($$SET mfa_auth.database_sessions = on$$);
RESET ROLE;
RESET mfa_auth.database_sessions;

-- 4. The shared attempt table reports refusals (none here).
SELECT survives_rollback, capacity, refusals FROM auth.attempt_tracking();

DELETE FROM auth.mfa_factors WHERE user_id IN (auth.role_user_id('mfa_trust_alice'), auth.role_user_id('mfa_trust_bob'));
DROP ROLE mfa_trust_alice;
DROP ROLE mfa_trust_bob;
DROP ROLE mfa_trust_plain;
