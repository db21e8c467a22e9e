-- Enforcement helpers for row-level-security policies (C functions in src/session.rs).
--
-- "Require MFA from exactly the users who enrolled it":
--     CREATE POLICY mfa ON t AS RESTRICTIVE TO authenticated USING ((SELECT auth.mfa_satisfied()));
-- The (SELECT ...) makes the call an InitPlan, evaluated once, which keeps a parallel plan
-- possible: the functions themselves are PARALLEL RESTRICTED, since the database-session id
-- lives in the leader backend's memory (docs/reference.md, "Enforcement helpers").

-- The highest level the current user can reach: aal2 once they have a verified factor
-- (Supabase Auth's nextLevel), else aal1. Cached per statement, like auth.aal().
CREATE FUNCTION auth.aal_next() RETURNS auth.aal_level
LANGUAGE c STABLE PARALLEL RESTRICTED
AS 'MODULE_PATHNAME', 'aal_next_wrapper';

-- The same for any user, for service code. Not for PUBLIC: it tells whether a user has MFA.
CREATE FUNCTION auth.aal_next(user_id uuid) RETURNS auth.aal_level
LANGUAGE c STABLE STRICT PARALLEL RESTRICTED
AS 'MODULE_PATHNAME', 'aal_next_of_wrapper';

-- auth.aal() >= auth.aal_next(): the current session has MFA, or its user has no verified
-- factor. Cached per statement; its per-row path is as cheap as auth.aal()'s.
CREATE FUNCTION auth.mfa_satisfied() RETURNS boolean
LANGUAGE c STABLE PARALLEL RESTRICTED
AS 'MODULE_PATHNAME', 'mfa_auth_mfa_satisfied';
