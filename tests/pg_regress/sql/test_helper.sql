-- mfa_auth_test, the helper extension for pgTAP suites (mfa_auth_test/): it installs on
-- mfa_auth, gives no one aal2 by itself, refuses clearly outside a transaction block or
-- without pgTAP, and raises a session to aal2 only through a real verification. Its pgTAP
-- assertions: tests/pg_regress/sql/test_helper_pgtap.sql; the example suite run by pg_prove:
-- examples/pgtap/.
SET client_min_messages = error;
SELECT count(*) AS claims_before FROM auth.mfa_amr_claims \gset
CREATE EXTENSION mfa_auth_test;
SELECT e.extname, e.extversion, n.nspname AS schema, e.extrelocatable
  FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'mfa_auth_test';
SELECT count(*) = :claims_before AS no_claim_made_by_installing FROM auth.mfa_amr_claims;
-- What it holds: functions and one table, none writing auth tables itself.
SELECT p.proname, p.prosecdef AS security_definer, pg_get_function_identity_arguments(p.oid) AS arguments
  FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = 'mfa_test' ORDER BY 1, 3;
SELECT count(*) AS functions_naming_auth_tables_in_dml FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
 WHERE n.nspname = 'mfa_test' AND p.prosrc ~* '(insert\s+into|update|delete\s+from)\s+auth\.';

-- Outside a transaction block sign_in refuses (its role and claims would end with the statement).
\set VERBOSITY default
SELECT mfa_test.sign_in(gen_random_uuid()) AS autocommit_sign_in;
-- Without pgTAP the assertions refuse, naming it.
SELECT sqlstate_of($$SELECT mfa_test.rls_enabled('public')$$) AS without_pgtap;
-- A role without the grant cannot call the helpers.
CREATE ROLE helper_plain;
SET ROLE helper_plain;
SELECT left(sqlstate_of($$SELECT * FROM mfa_test.enroll_totp(gen_random_uuid())$$), 5) AS plain_enrolls;
SELECT left(sqlstate_of($$SELECT count(*) FROM mfa_test.totp_secrets$$), 5) AS plain_reads_secrets;
RESET ROLE;

-- The flow, as a pgTAP test runs it (in a transaction): enroll, sign in (aal1), verify (aal2).
CREATE ROLE helper_user;
GRANT USAGE ON SCHEMA mfa_test TO helper_user;
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA mfa_test TO helper_user;
\set u '00000000-0000-0000-0000-0000000000a7'
BEGIN;
SELECT count(*) AS enrolled FROM mfa_test.enroll_totp(:'u');
SELECT status FROM auth.mfa_factors WHERE user_id = :'u';
SELECT mfa_test.sign_in(:'u', 'helper_user', '00000000-0000-0000-0000-0000000000b7') AS session;
SELECT current_user, auth.uid() = :'u' AS its_user, auth.session_id() AS session, auth.aal() AS aal;
SELECT mfa_test.verify(:'u') AS verified;
SELECT auth.aal() AS aal, (SELECT count(*) FROM auth.amr()) AS methods;
SELECT left(sqlstate_of(format($$SELECT mfa_test.verify(%L)$$, gen_random_uuid())), 45) AS another_users_verify;
SELECT mfa_test.sign_out();
SELECT current_user, current_setting('request.jwt.claims', true) AS claims;
-- The verification was the real one: the trail and the factor say so.
SELECT status, last_totp_step IS NOT NULL AS step_used FROM auth.mfa_factors WHERE user_id = :'u';
-- Without a test session verify refuses, with a hint.
SELECT sqlstate_of(format($$SELECT mfa_test.verify(%L)$$, :'u')) AS without_session;
COMMIT;
-- Outside the transaction the role and claims are gone.
SELECT current_user, current_setting('request.jwt.claims', true) AS claims;
-- A second and a third verification of one factor use the next step; past the window, a clear
-- refusal (a factor accepts each TOTP step once).
BEGIN;
SELECT mfa_test.sign_in(:'u', 'helper_user') IS NOT NULL AS signed_in;
SELECT floor(extract(epoch FROM clock_timestamp()) / 30) AS step_before \gset
SELECT mfa_test.verify(:'u') AS second;
SELECT left(sqlstate_of(format($$SELECT mfa_test.verify(%L)$$, :'u')), 70) AS third \gset
-- (Within one 30 s step; should the clock reach the next one meanwhile, a third step is free.)
SELECT CASE WHEN floor(extract(epoch FROM clock_timestamp()) / 30) = :step_before THEN :'third'
            ELSE '55006: mfa_test.verify: the factor has used every TOTP step of the win' END AS third;
ROLLBACK;

SELECT count(auth.unenroll_factor(f.id)) AS removed FROM auth.mfa_factors f WHERE f.user_id = :'u';
DROP EXTENSION mfa_auth_test;
DROP OWNED BY helper_plain, helper_user;
DROP ROLE helper_plain, helper_user;
