-- pgTAP tests of the example app's policies (examples/pgtap/schema.sql) through mfa_auth_test:
-- each policy at aal1, at aal2, for a user with no factor, and after unenrolling. Run by
-- pg_prove (examples/pgtap/run.sh). Users sign in as PostgREST would sign them in (role
-- authenticated, request.jwt.claims), and reach aal2 only by a real verification.
BEGIN;
SELECT plan(14);

SELECT mfa_test.rls_enabled('app');

-- alice: enrolls a TOTP factor and verifies it in her first session.
SELECT lives_ok($$SELECT mfa_test.enroll_totp('a1111111-1111-4111-8111-111111111111')$$, 'alice enrolls TOTP');
SELECT mfa_test.sign_in('a1111111-1111-4111-8111-111111111111');
SELECT is(auth.aal()::text, 'aal1', 'alice signs in at aal1');
SELECT results_eq('SELECT count(*)::int FROM app.payments', ARRAY[2],
                  'alice at aal1 with an unverified factor still sees her payments (enrolling alone does not raise the bar)');
SELECT ok(mfa_test.verify('a1111111-1111-4111-8111-111111111111'), 'alice verifies her code (the real verification)');
SELECT is(auth.aal()::text, 'aal2', 'her session is aal2');
SELECT results_eq('SELECT count(*)::int FROM app.payments', ARRAY[2], 'alice at aal2 sees her 2 payments, no one else''s');
SELECT mfa_test.sign_out();

-- alice again, in a new session: aal1 while she has a verified factor.
SELECT mfa_test.sign_in('a1111111-1111-4111-8111-111111111111');
SELECT is_empty('SELECT * FROM app.payments', 'alice at aal1 with a verified factor sees no payments');
SELECT results_eq('SELECT count(*)::int FROM app.profiles', ARRAY[1], 'alice at aal1 sees her profile');
SELECT mfa_test.sign_out();

-- The same, as one assertion.
SELECT mfa_test.policies_require_aal2('app.payments', 'a1111111-1111-4111-8111-111111111111');

-- bob never enrolled: the recipe asks MFA only of users who have it.
SELECT mfa_test.sign_in('b2222222-2222-4222-8222-222222222222');
SELECT results_eq('SELECT count(*)::int FROM app.payments', ARRAY[2], 'bob (no factor) sees his payments at aal1');
SELECT mfa_test.sign_out();

-- carol enrolls and verifies, then removes her factor: she is back to aal1 rules.
SELECT mfa_test.enroll_totp('c3333333-3333-4333-8333-333333333333');
SELECT mfa_test.sign_in('c3333333-3333-4333-8333-333333333333');
SELECT mfa_test.verify('c3333333-3333-4333-8333-333333333333');
SELECT lives_ok($$SELECT auth.unenroll_my_factor((SELECT factor_id FROM auth.my_factors()))$$,
                'carol unenrolls her factor from her aal2 session');
SELECT mfa_test.sign_out();
SELECT mfa_test.sign_in('c3333333-3333-4333-8333-333333333333');
SELECT is(auth.aal_next()::text, 'aal1', 'carol has no verified factor any more');
SELECT results_eq('SELECT count(*)::int FROM app.payments', ARRAY[2], 'carol (unenrolled) sees her payments at aal1');
SELECT mfa_test.sign_out();

SELECT * FROM finish();
ROLLBACK;
