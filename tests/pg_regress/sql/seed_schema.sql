-- The two seed tables must match shared/seeds exactly: every column (name, type,
-- nullability, in order), the primary keys and every index definition. Any drift
-- in the DDL changes this output.
SELECT c.relname AS table_name, a.attnum, a.attname AS column_name,
       pg_catalog.format_type(a.atttypid, a.atttypmod) AS type,
       CASE WHEN a.attnotnull THEN 'NO' ELSE 'YES' END AS nullable
  FROM pg_catalog.pg_attribute a
  JOIN pg_catalog.pg_class c ON c.oid = a.attrelid
  JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname = 'auth' AND c.relname IN ('mfa_challenges', 'mfa_amr_claims')
   AND a.attnum > 0 AND NOT a.attisdropped
 ORDER BY c.relname, a.attnum;

-- Primary keys, by constraint name and columns.
SELECT conrelid::regclass AS table_name, conname, contype,
       pg_catalog.pg_get_constraintdef(oid) AS definition
  FROM pg_catalog.pg_constraint
 WHERE conrelid IN ('auth.mfa_challenges'::regclass, 'auth.mfa_amr_claims'::regclass)
   AND contype IN ('p', 'u')
 ORDER BY 1::text, conname;

-- Every index of the seed tables, exactly as pg_indexes shows it: the four of the seeds, and
-- mfa_challenges_factor_id_created_at_idx added beside them (see sql/schema.sql for why).
SELECT tablename, indexname, indexdef
  FROM pg_catalog.pg_indexes
 WHERE schemaname = 'auth' AND tablename IN ('mfa_challenges', 'mfa_amr_claims')
 ORDER BY tablename, indexname;

-- The factors table and the enums the flow relies on.
SELECT a.attname AS column_name, pg_catalog.format_type(a.atttypid, a.atttypmod) AS type,
       a.attnotnull AS not_null, pg_catalog.pg_get_expr(d.adbin, d.adrelid) AS "default"
  FROM pg_catalog.pg_attribute a
  LEFT JOIN pg_catalog.pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
 WHERE a.attrelid = 'auth.mfa_factors'::regclass AND a.attnum > 0 AND NOT a.attisdropped
 ORDER BY a.attnum;
SELECT t.typname, string_agg(e.enumlabel, ',' ORDER BY e.enumsortorder) AS labels
  FROM pg_catalog.pg_type t JOIN pg_catalog.pg_enum e ON e.enumtypid = t.oid
 WHERE t.typnamespace = 'auth'::regnamespace
 GROUP BY t.typname ORDER BY t.typname;

-- pg_dump keeps users' MFA data: every table is an extension configuration table.
SELECT extconfig::regclass[] AS config_tables FROM pg_catalog.pg_extension WHERE extname = 'mfa_auth';

-- auth.mfa_factors' rules hold for direct writes too: the single-column ones as domains
-- (checked when the column is assigned), the ones that tie columns together as CHECKs.
SELECT t.typname, pg_catalog.format_type(t.typbasetype, t.typtypmod) AS base,
       pg_catalog.pg_get_constraintdef(c.oid) AS rule
  FROM pg_catalog.pg_type t JOIN pg_catalog.pg_constraint c ON c.contypid = t.oid
 WHERE t.typnamespace = 'auth'::regnamespace ORDER BY t.typname;
SELECT reloptions FROM pg_catalog.pg_class WHERE oid = 'auth.mfa_factors'::regclass;
BEGIN;
INSERT INTO auth.mfa_factors (id, user_id, factor_type, secret, status)
VALUES ('00000000-0000-0000-0000-0000000d0001', gen_random_uuid(), 'totp', 'JBSWY3DPEHPK3PXP', 'verified');
SELECT public.sqlstate_of(s) AS refused FROM unnest(ARRAY[
  $$INSERT INTO auth.mfa_factors (user_id, factor_type, secret, totp_digits) VALUES (gen_random_uuid(), 'totp', 'JBSWY3DPEHPK3PXP', 5)$$,
  $$UPDATE auth.mfa_factors SET totp_algorithm = 'MD5' WHERE id = '00000000-0000-0000-0000-0000000d0001'$$,
  $$UPDATE auth.mfa_factors SET totp_period = 0 WHERE id = '00000000-0000-0000-0000-0000000d0001'$$,
  $$UPDATE auth.mfa_factors SET failed_attempts = failed_attempts - 1 WHERE id = '00000000-0000-0000-0000-0000000d0001'$$,
  $$UPDATE auth.mfa_factors SET secret = NULL WHERE id = '00000000-0000-0000-0000-0000000d0001'$$,
  $$INSERT INTO auth.mfa_factors (user_id, factor_type) VALUES (gen_random_uuid(), 'phone')$$,
  $$INSERT INTO auth.mfa_factors (user_id, factor_type, status) VALUES (gen_random_uuid(), 'webauthn', 'verified')$$
]) s;
ROLLBACK;
