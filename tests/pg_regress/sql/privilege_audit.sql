-- The attack surface: every function in schema auth, whether it is SECURITY DEFINER, its
-- pinned settings, and who may EXECUTE it. Any change shows up here in review.
-- (Procedures' arguments without the IN that PostgreSQL 14+ prints and 13 does not.)
SELECT p.proname || '(' || regexp_replace(pg_catalog.pg_get_function_identity_arguments(p.oid), '(^|, )IN ', '\1', 'g') || ')' AS function,
       p.prosecdef AS security_definer,
       coalesce(array_to_string(p.proconfig, ', '), '') AS settings,
       coalesce((SELECT string_agg(CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE a.grantee::regrole::text END, ', ' ORDER BY 1)
                   FROM aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) a
                  WHERE a.privilege_type = 'EXECUTE'
                    AND a.grantee <> p.proowner), '') AS execute_granted_to
  FROM pg_catalog.pg_proc p
 WHERE p.pronamespace = 'auth'::regnamespace
 ORDER BY 1;
-- Every SECURITY DEFINER function pins search_path. The only ones PUBLIC may execute are the
-- self-service functions, which act on auth.uid()'s own factors alone.
SELECT count(*) AS definer_functions,
       count(*) FILTER (WHERE 'search_path=pg_catalog, pg_temp' = ANY (proconfig)) AS with_pinned_search_path,
       string_agg(proname, ', ' ORDER BY proname) FILTER (WHERE has_function_privilege('public', oid, 'EXECUTE'))
         AS executable_by_public
  FROM pg_catalog.pg_proc WHERE pronamespace = 'auth'::regnamespace AND prosecdef;
