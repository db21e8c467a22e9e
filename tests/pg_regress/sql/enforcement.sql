-- Enforcement helpers: auth.aal_next(), auth.aal_next(uuid) for service code, and
-- auth.mfa_satisfied(), for a policy that requires MFA from exactly the users who have it.
CREATE ROLE mfa_enforce_user LOGIN;
CREATE TABLE public.notes (id int, body text);
INSERT INTO public.notes SELECT g, 'note ' || g FROM generate_series(1, 3) g;
ALTER TABLE public.notes ENABLE ROW LEVEL SECURITY;
CREATE POLICY readable ON public.notes FOR SELECT USING (true);
CREATE POLICY mfa_if_enrolled ON public.notes AS RESTRICTIVE FOR SELECT USING ((SELECT auth.mfa_satisfied()));
GRANT SELECT ON public.notes TO mfa_enforce_user;

SET ROLE mfa_enforce_user;
-- No factor: aal1 is the most this user can reach, so aal1 satisfies the policy.
SELECT auth.aal(), auth.aal_next(), auth.mfa_satisfied();
SELECT count(*) AS visible_without_factor FROM public.notes;
-- An unverified factor does not raise the bar (it could be anyone's half-finished enrollment).
SELECT factor_id, secret FROM auth.enroll_my_totp('phone') \gset
SELECT auth.aal_next(), auth.mfa_satisfied();
SELECT count(*) AS visible_with_unverified_factor FROM public.notes;
-- Verified in this session: aal2 reached.
SELECT auth.totp_generate(:'secret') AS code \gset
SELECT auth.mfa_verify(:'code') AS verified;
SELECT auth.aal(), auth.aal_next(), auth.mfa_satisfied();
SELECT count(*) AS visible_at_aal2 FROM public.notes;
-- The per-user variant tells whether anyone has MFA: service code only.
SELECT public.sqlstate_of($$SELECT auth.aal_next(auth.uid())$$) AS per_user_variant;
RESET ROLE;

-- Another session of the same user (DISCARD ALL starts one): the user has a verified factor,
-- this session has no MFA, so the policy hides every row.
DISCARD ALL;
SET ROLE mfa_enforce_user;
SELECT auth.aal(), auth.aal_next(), auth.mfa_satisfied();
SELECT count(*) AS visible_in_other_session FROM public.notes;
-- Verified in this session too (the next time step: a step is accepted once).
SELECT auth.totp_generate(:'secret', now() + interval '30 seconds') AS code \gset
SELECT auth.mfa_verify(:'code') AS verified;
SELECT auth.aal(), auth.aal_next(), auth.mfa_satisfied();
SELECT count(*) AS visible_after_verifying FROM public.notes;
-- Unenrolled (its claim goes with it): nothing to reach any more, visible at aal1.
SELECT auth.unenroll_my_factor(:'factor_id') AS unenrolled;
SELECT auth.aal(), auth.aal_next(), auth.mfa_satisfied();
SELECT count(*) AS visible_after_unenroll FROM public.notes;
RESET ROLE;

-- Service code: any user's next level; NULL in, NULL out.
SELECT factor_id, secret FROM auth.enroll_totp(auth.role_user_id('mfa_enforce_user'), 'desk') \gset
SELECT auth.aal_next(auth.role_user_id('mfa_enforce_user')) AS unverified_only;
SELECT auth.totp_generate(:'secret') AS code \gset
SELECT challenge_id FROM auth.create_challenge(:'factor_id', '10.0.0.1') \gset
SELECT auth.verify_challenge(:'challenge_id', :'code', '10.0.0.1') AS verified;
SELECT auth.aal_next(auth.role_user_id('mfa_enforce_user')) AS enrolled_user,
       auth.aal_next(auth.role_user_id('mfa_nobody')) AS other_user,
       auth.aal_next(NULL) AS no_user;

-- Gateway mode: the user is the sub claim; without one there is no user and nothing to reach.
SET mfa_auth.jwt_claims_roles = 'postgres';
SELECT set_config('request.jwt.claims', json_build_object('sub', auth.role_user_id('mfa_enforce_user'), 'session_id', '3fa85f64-5717-4562-b3fc-2c963f66afa6')::text, false) IS NOT NULL AS claims_set;
SELECT auth.aal(), auth.aal_next(), auth.mfa_satisfied();
SELECT set_config('request.jwt.claims', '{"role": "anon"}', false) IS NOT NULL AS claims_set;
SELECT auth.uid(), auth.aal(), auth.aal_next(), auth.mfa_satisfied();
RESET request.jwt.claims;
RESET mfa_auth.jwt_claims_roles;

-- Volatility and parallel safety: STABLE, cached per statement; PARALLEL RESTRICTED (a
-- database session lives in the leader's memory), so policies wrap them in (SELECT ...).
SELECT p.oid::regprocedure AS function, p.provolatile, p.proparallel, p.prosecdef, p.proisstrict,
       has_function_privilege('public', p.oid, 'EXECUTE') AS public_may_execute
  FROM pg_catalog.pg_proc p
 WHERE p.pronamespace = 'auth'::regnamespace AND p.proname IN ('aal_next', 'mfa_satisfied')
 ORDER BY 1;

DROP TABLE public.notes;
SELECT count(auth.unenroll_factor(id)) AS unenrolled FROM auth.mfa_factors WHERE user_id = auth.role_user_id('mfa_enforce_user');
DROP ROLE mfa_enforce_user;
