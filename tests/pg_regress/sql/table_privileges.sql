-- An ordinary role can see the schema but not read or write any auth table.
CREATE ROLE mfa_regress_plain LOGIN;
SET ROLE mfa_regress_plain;
SELECT * FROM auth.mfa_challenges;
SELECT * FROM auth.mfa_amr_claims;
SELECT * FROM auth.mfa_factors;
SELECT secret FROM auth.mfa_factors;
INSERT INTO auth.mfa_challenges (factor_id, ip_address) VALUES (gen_random_uuid(), '127.0.0.1');
INSERT INTO auth.mfa_amr_claims (session_id, authentication_method) VALUES (gen_random_uuid(), 'totp');
INSERT INTO auth.mfa_factors (user_id, factor_type) VALUES (gen_random_uuid(), 'totp');
UPDATE auth.mfa_factors SET status = 'verified';
DELETE FROM auth.mfa_amr_claims;
RESET ROLE;
-- PUBLIC holds no privilege on any table of the schema.
SELECT c.relname, c.relacl
  FROM pg_catalog.pg_class c
 WHERE c.relnamespace = 'auth'::regnamespace AND c.relkind = 'r'
   AND EXISTS (SELECT 1 FROM pg_catalog.aclexplode(c.relacl) x WHERE x.grantee = 0)
 ORDER BY 1;
SELECT count(*) AS tables_with_public_privileges
  FROM pg_catalog.pg_class c, pg_catalog.aclexplode(coalesce(c.relacl, acldefault('r', c.relowner))) x
 WHERE c.relnamespace = 'auth'::regnamespace AND c.relkind = 'r' AND x.grantee = 0;
DROP ROLE mfa_regress_plain;
