-- mfa_auth_test's pgTAP assertions (pgTAP from Debian's postgresql-15-pgtap): rls_enabled, and
-- policies_require_aal2 against a table that needs aal2, one open at aal1, and one whose
-- restrictive policy is broken (USING (true)). Each prints pgTAP's "ok"/"not ok" line.
SET client_min_messages = error;
-- (PostgreSQL 18 is built here from source, without pgTAP: there the assertions' refusal is
-- what is checked, expected/pg18/test_helper_pgtap.out.)
SELECT EXISTS (SELECT FROM pg_available_extensions WHERE name = 'pgtap') AS have_pgtap \gset
\if :have_pgtap
CREATE EXTENSION pgtap;
CREATE EXTENSION mfa_auth_test;
CREATE ROLE helper_app;
CREATE SCHEMA hp;
CREATE TABLE hp.secured (user_id uuid, body text);
CREATE TABLE hp.open (user_id uuid, body text);
CREATE TABLE hp.broken (user_id uuid, body text);
CREATE TABLE hp.no_rls (id int);
INSERT INTO hp.secured VALUES ('00000000-0000-0000-0000-0000000000c8', 'pay');
INSERT INTO hp.open VALUES ('00000000-0000-0000-0000-0000000000c9', 'profile');
INSERT INTO hp.broken VALUES ('00000000-0000-0000-0000-0000000000ca', 'pay');
ALTER TABLE hp.secured ENABLE ROW LEVEL SECURITY;
ALTER TABLE hp.open ENABLE ROW LEVEL SECURITY;
ALTER TABLE hp.broken ENABLE ROW LEVEL SECURITY;
CREATE POLICY own ON hp.secured FOR SELECT USING (user_id = (SELECT auth.uid()));
CREATE POLICY mfa ON hp.secured AS RESTRICTIVE FOR SELECT USING ((SELECT auth.mfa_satisfied()));
CREATE POLICY own ON hp.open FOR SELECT USING (user_id = (SELECT auth.uid()));
CREATE POLICY own ON hp.broken FOR SELECT USING (user_id = (SELECT auth.uid()));
CREATE POLICY mfa ON hp.broken AS RESTRICTIVE FOR SELECT USING (true);
GRANT USAGE ON SCHEMA hp TO helper_app;
GRANT SELECT ON ALL TABLES IN SCHEMA hp TO helper_app;
BEGIN;
SELECT plan(5);
SELECT mfa_test.rls_enabled('hp');
DROP TABLE hp.no_rls;
SELECT mfa_test.rls_enabled('hp');
SELECT mfa_test.policies_require_aal2('hp.secured', '00000000-0000-0000-0000-0000000000c8', 'helper_app');
-- (One user per assertion: each verifies twice, and a factor accepts a TOTP step once.)
SELECT mfa_test.policies_require_aal2('hp.open', '00000000-0000-0000-0000-0000000000c9', 'helper_app');
SELECT mfa_test.policies_require_aal2('hp.broken', '00000000-0000-0000-0000-0000000000ca', 'helper_app', 'the broken policy');
SELECT current_user, auth.uid() AS uid_after;
SELECT * FROM finish();
ROLLBACK;
SELECT count(auth.unenroll_factor(f.id)) AS removed FROM auth.mfa_factors f
 WHERE f.user_id IN ('00000000-0000-0000-0000-0000000000c8', '00000000-0000-0000-0000-0000000000c9', '00000000-0000-0000-0000-0000000000ca');
DROP SCHEMA hp CASCADE;
DROP EXTENSION mfa_auth_test;
DROP EXTENSION pgtap;
DROP OWNED BY helper_app;
DROP ROLE helper_app;
\else
CREATE EXTENSION mfa_auth_test;
SELECT sqlstate_of($$SELECT mfa_test.policies_require_aal2('pg_class')$$) AS without_pgtap;
SELECT sqlstate_of($$SELECT mfa_test.rls_enabled('public')$$) AS without_pgtap;
DROP EXTENSION mfa_auth_test;
\endif
