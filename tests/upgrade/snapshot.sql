-- A catalog snapshot of schema auth, one line per fact, sorted: what must be identical between
-- a database upgraded from an older release (or by pg_upgrade) and a fresh CREATE EXTENSION of
-- this one. ACLs are the effective ones (a NULL ACL is its default), as sorted grants:
-- pg_upgrade stores an explicit ACL that equals the default as NULL, and may reorder one.
SELECT line FROM (
  -- functions and procedures: signature, result, kind, language, flags, settings, ACL, body
  SELECT format('routine %s(%s) returns %s kind=%s lang=%s secdef=%s volatility=%s parallel=%s strict=%s config=%s acl=%s src=%s bin=%s',
                p.proname, pg_get_function_arguments(p.oid), coalesce(pg_get_function_result(p.oid), '-'),
                p.prokind, l.lanname, p.prosecdef, p.provolatile, p.proparallel, p.proisstrict,
                coalesce(array_to_string(p.proconfig, ';'), ''), (SELECT string_agg(format('%s:%s:%s', a.grantee::regrole, a.privilege_type, a.is_grantable), ',' ORDER BY a.grantee::regrole::text, a.privilege_type) FROM aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) a),
                md5(p.prosrc || coalesce(pg_get_functiondef(p.oid), '')), coalesce(p.probin, '')) AS line
    FROM pg_proc p JOIN pg_language l ON l.oid = p.prolang
   WHERE p.pronamespace = 'auth'::regnamespace
  UNION ALL
  -- relations: kind, ACL, options, comment
  SELECT format('relation %s kind=%s acl=%s options=%s comment=%s', c.relname, c.relkind,
                (SELECT string_agg(format('%s:%s:%s', a.grantee::regrole, a.privilege_type, a.is_grantable), ',' ORDER BY a.grantee::regrole::text, a.privilege_type) FROM aclexplode(coalesce(c.relacl, acldefault((CASE WHEN c.relkind = 'S' THEN 's' ELSE 'r' END)::"char", c.relowner))) a), coalesce(array_to_string(c.reloptions, ','), ''),
                coalesce(obj_description(c.oid, 'pg_class'), ''))
    FROM pg_class c WHERE c.relnamespace = 'auth'::regnamespace
  UNION ALL
  -- columns: position, type, nullability, default
  SELECT format('column %s.%s #%s %s notnull=%s default=%s', c.relname, a.attname, a.attnum,
                format_type(a.atttypid, a.atttypmod), a.attnotnull, coalesce(pg_get_expr(d.adbin, d.adrelid), ''))
    FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
    LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
   WHERE c.relnamespace = 'auth'::regnamespace AND a.attnum > 0 AND NOT a.attisdropped
  UNION ALL
  SELECT format('index %s', pg_get_indexdef(i.indexrelid))
    FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid WHERE c.relnamespace = 'auth'::regnamespace
  UNION ALL
  SELECT format('constraint %s on %s: %s', con.conname, con.conrelid::regclass, pg_get_constraintdef(con.oid))
    FROM pg_constraint con WHERE con.connamespace = 'auth'::regnamespace
  UNION ALL
  SELECT format('view %s: %s', c.relname, pg_get_viewdef(c.oid))
    FROM pg_class c WHERE c.relnamespace = 'auth'::regnamespace AND c.relkind IN ('v', 'm')
  UNION ALL
  SELECT format('type %s kind=%s base=%s labels=%s acl=%s', t.typname, t.typtype,
                CASE WHEN t.typbasetype <> 0 THEN format_type(t.typbasetype, t.typtypmod) ELSE '' END,
                coalesce((SELECT string_agg(e.enumlabel, ',' ORDER BY e.enumsortorder) FROM pg_enum e WHERE e.enumtypid = t.oid), ''),
                (SELECT string_agg(format('%s:%s:%s', a.grantee::regrole, a.privilege_type, a.is_grantable), ',' ORDER BY a.grantee::regrole::text, a.privilege_type) FROM aclexplode(coalesce(t.typacl, acldefault('T', t.typowner))) a))
    FROM pg_type t WHERE t.typnamespace = 'auth'::regnamespace AND t.typtype IN ('e', 'c', 'd', 'b') AND t.typrelid = 0
  UNION ALL
  SELECT format('policy %s on %s: %s %s using %s check %s', pol.polname, pol.polrelid::regclass, pol.polcmd,
                pol.polpermissive, coalesce(pg_get_expr(pol.polqual, pol.polrelid), ''),
                coalesce(pg_get_expr(pol.polwithcheck, pol.polrelid), ''))
    FROM pg_policy pol JOIN pg_class c ON c.oid = pol.polrelid WHERE c.relnamespace = 'auth'::regnamespace
  UNION ALL
  SELECT format('trigger %s on %s', tg.tgname, tg.tgrelid::regclass)
    FROM pg_trigger tg JOIN pg_class c ON c.oid = tg.tgrelid WHERE c.relnamespace = 'auth'::regnamespace
  UNION ALL
  SELECT format('extconfig %s where %s', cfg.rel::regclass, cfg.cond)
    FROM pg_extension e, unnest(e.extconfig, e.extcondition) AS cfg(rel, cond) WHERE e.extname = 'mfa_auth'
  UNION ALL
  SELECT format('extension version=%s relocatable=%s schema=%s', e.extversion, e.extrelocatable, e.extnamespace::regnamespace)
    FROM pg_extension e WHERE e.extname = 'mfa_auth'
  UNION ALL
  SELECT format('member %s', pg_describe_object(d.classid, d.objid, d.objsubid))
    FROM pg_depend d JOIN pg_extension e ON d.refclassid = 'pg_extension'::regclass AND d.refobjid = e.oid
   WHERE e.extname = 'mfa_auth' AND d.deptype = 'e'
  UNION ALL
  SELECT format('schema auth acl=%s owner=%s', (SELECT string_agg(format('%s:%s:%s', a.grantee::regrole, a.privilege_type, a.is_grantable), ',' ORDER BY a.grantee::regrole::text, a.privilege_type) FROM aclexplode(coalesce(n.nspacl, acldefault('n', n.nspowner))) a), n.nspowner::regrole)
    FROM pg_namespace n WHERE n.nspname = 'auth'
) s
ORDER BY line COLLATE "C";
