-- Database-session mode: the role is the user, the connection is the session.
SELECT auth.role_user_id('alice') AS alice, auth.role_user_id('alice') = auth.role_user_id('alice'::name) AS stable,
       auth.role_user_id('alice') <> auth.role_user_id('Alice') AS case_sensitive;
CREATE ROLE mfa_regress_user LOGIN;
CREATE TABLE public.docs (id int, body text);
INSERT INTO public.docs SELECT g, 'secret ' || g FROM generate_series(1, 3) g;
ALTER TABLE public.docs ENABLE ROW LEVEL SECURITY;
CREATE POLICY readable ON public.docs FOR SELECT USING (true);
-- The policy calls auth.aal() unwrapped: it is STABLE and answers from a per-statement cache.
CREATE POLICY mfa_required ON public.docs AS RESTRICTIVE FOR SELECT USING (auth.aal() = 'aal2');
GRANT SELECT ON public.docs TO mfa_regress_user;

SET ROLE mfa_regress_user;
SELECT auth.uid() = auth.role_user_id('mfa_regress_user') AS uid_is_role,
       auth.session_id() IS NOT NULL AS has_session;
SELECT auth.session_id() AS s1 \gset
SELECT auth.session_id() = :'s1' AS same_session_later;
SELECT auth.aal(), auth.amr(), auth.mfa_verified_within('1 hour') AS fresh;
SELECT count(*) AS visible_at_aal1 FROM public.docs;
-- Enroll and verify for oneself.
SELECT factor_id, secret, uri LIKE 'otpauth://totp/' || current_database() || ':mfa_regress_user?%' AS uri_ok
  FROM auth.enroll_my_totp('laptop') \gset
SELECT :'uri_ok' AS uri_ok;
SELECT friendly_name, factor_type, status FROM auth.my_factors();
SELECT auth.mfa_verify('000000') AS wrong;
SELECT auth.totp_generate(:'secret') AS code \gset
SELECT auth.mfa_verify(:'code') AS right;
SELECT auth.mfa_verify(:'code') AS replayed;
SELECT auth.aal(), jsonb_path_query_array(auth.amr(), '$[*].method') AS methods,
       auth.mfa_verified_within('5 minutes') AS fresh, auth.mfa_verified_within('0 seconds') AS within_zero;
SELECT count(*) AS visible_at_aal2 FROM public.docs;
SELECT friendly_name, factor_type, status FROM auth.my_factors();
-- Self-service refusals.
SELECT public.sqlstate_of(q) FROM unnest(ARRAY[
  $$SELECT auth.mfa_verify(NULL)$$,
  $$SELECT auth.mfa_verify('123456', '00000000-0000-0000-0000-000000000000')$$,
  $$SELECT auth.unenroll_my_factor('00000000-0000-0000-0000-000000000000')$$,
  $$SELECT auth.unenroll_my_factor(NULL)$$,
  $$SELECT auth.mfa_verified_within(NULL)$$,
  $$SELECT auth.mfa_verified_within('-1 second')$$,
  $$SELECT auth.role_user_id(NULL)$$,
  $$SET mfa_auth.jwt_claims_roles = 'mfa_regress_user'$$,
  $$SELECT auth.session_aal(auth.session_id())$$,
  $$SELECT * FROM auth.mfa_amr_claims$$
]) AS q;
-- Forged claims are ignored for a role that is not listed.
SELECT set_config('request.jwt.claims', '{"sub": "3fa85f64-5717-4562-b3fc-2c963f66afa6", "aal": "aal1"}', false) IS NOT NULL AS forged;
SELECT auth.uid() = auth.role_user_id('mfa_regress_user') AS still_the_role, auth.aal();
RESET ROLE;

-- DISCARD ALL (what poolers run between clients) starts a new database session.
SELECT auth.session_id() AS before_discard \gset
DISCARD ALL;
SELECT auth.session_id() <> :'before_discard' AS new_session, auth.aal();
SET ROLE mfa_regress_user;
SELECT count(*) AS visible_after_discard FROM public.docs;
RESET ROLE;

-- Volatility and parallel safety of the policy-facing functions.
SELECT p.proname, p.provolatile, p.proparallel, p.prosecdef
  FROM pg_catalog.pg_proc p
 WHERE p.pronamespace = 'auth'::regnamespace
   AND p.proname IN ('uid', 'session_id', 'aal', 'amr', 'mfa_verified_within', 'role_user_id')
 ORDER BY 1;

DROP TABLE public.docs;
DELETE FROM auth.mfa_factors WHERE user_id = auth.role_user_id('mfa_regress_user');
DROP ROLE mfa_regress_user;
