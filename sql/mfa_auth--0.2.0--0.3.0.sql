-- mfa_auth 0.2.0 -> 0.3.0 (ALTER EXTENSION mfa_auth UPDATE).
--
-- Every SQL-visible change since 0.2.0 is made here, in the same commit as the change, so an
-- updated database equals a fresh 0.3.0 install (tests/upgrade/run.sh compares their catalogs
-- and checks the old data on both release paths: 0.2.0 -> 0.3.0 and 0.1.0 -> 0.2.0 -> 0.3.0).
--
-- Changes that need no SQL here (the library does them; a database on 0.2.0's SQL gets them as
-- soon as the 0.3.0 library is installed):
--   - SHOW / pg_settings of mfa_auth.encryption_keys while it is unset no longer crash the
--     server (its show hook returned NULL);
--   - every function that writes refuses on a standby server or in a read-only transaction
--     with SQLSTATE 25006 and a hint, before it counts an attempt;
--   - checks made under the per-user lock (first factor, factor limit, names, recovery codes)
--     read a snapshot taken after the lock, so a racing second first factor gets 42501;
--   - no Rust backtrace in any error a client receives;
--   - before its first statement in a backend the library checks that schema auth is the
--     extension's, owned by a superuser, with CREATE for no one else (42501 otherwise).

-- 1. Schema auth must be safe to keep using (0.1.0 and 0.2.0 installed silently into a schema
--    auth that someone else had created). Refused, with what to do, when another role owns it
--    or may create objects in it; objects in it that are not the extension's are named in a
--    WARNING (review them: docs/security.md, "Schema auth").
DO $check$
DECLARE
    owner_name text;
    owner_super boolean;
    foreign_objects text;
BEGIN
    SELECT r.rolname, r.rolsuper INTO owner_name, owner_super
      FROM pg_catalog.pg_namespace n JOIN pg_catalog.pg_roles r ON r.oid OPERATOR(pg_catalog.=) n.nspowner
     WHERE n.nspname OPERATOR(pg_catalog.=) 'auth';
    IF NOT owner_super THEN
        RAISE EXCEPTION USING ERRCODE = '42501',
            MESSAGE = pg_catalog.format('schema "auth" belongs to role "%s", which is not a superuser: mfa_auth is not updated', owner_name),
            DETAIL = 'mfa_auth was installed into a schema auth that this role had created. Its owner can rename the schema and put objects of their own under the names mfa_auth''s SECURITY DEFINER functions use.',
            HINT = 'Review the schema (docs/security.md, "Schema auth"), then as a superuser: ALTER SCHEMA auth OWNER TO <a superuser>; REVOKE CREATE ON SCHEMA auth FROM PUBLIC, <other roles>; and run ALTER EXTENSION mfa_auth UPDATE again.';
    END IF;
    IF EXISTS (SELECT 1 FROM pg_catalog.pg_namespace n, pg_catalog.aclexplode(n.nspacl) a
                WHERE n.nspname OPERATOR(pg_catalog.=) 'auth' AND a.privilege_type OPERATOR(pg_catalog.=) 'CREATE'
                  AND NOT COALESCE((SELECT r.rolsuper FROM pg_catalog.pg_roles r WHERE r.oid OPERATOR(pg_catalog.=) a.grantee), false)) THEN
        RAISE EXCEPTION USING ERRCODE = '42501',
            MESSAGE = 'schema "auth" grants CREATE to a role that is not a superuser: mfa_auth is not updated',
            HINT = 'REVOKE CREATE ON SCHEMA auth FROM PUBLIC, <those roles>; then run ALTER EXTENSION mfa_auth UPDATE again.';
    END IF;
    SELECT pg_catalog.string_agg(o.what, ', ' ORDER BY o.what) INTO foreign_objects
      FROM (SELECT pg_catalog.format('%s %s', CASE c.relkind WHEN 'r' THEN 'table' WHEN 'v' THEN 'view' ELSE 'relation' END, c.relname) AS what, c.oid, 'pg_catalog.pg_class'::pg_catalog.regclass AS cls
              FROM pg_catalog.pg_class c WHERE c.relnamespace OPERATOR(pg_catalog.=) 'auth'::pg_catalog.regnamespace
               AND c.relkind OPERATOR(pg_catalog.=) ANY ('{r,v,m,f,p,S}')
            UNION ALL
            SELECT pg_catalog.format('function %s', p.oid::pg_catalog.regprocedure), p.oid, 'pg_catalog.pg_proc'::pg_catalog.regclass
              FROM pg_catalog.pg_proc p WHERE p.pronamespace OPERATOR(pg_catalog.=) 'auth'::pg_catalog.regnamespace) o
     WHERE NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d
                        WHERE d.classid OPERATOR(pg_catalog.=) o.cls AND d.objid OPERATOR(pg_catalog.=) o.oid
                          AND d.deptype OPERATOR(pg_catalog.=) 'e');
    IF foreign_objects IS NOT NULL THEN
        RAISE WARNING USING
            MESSAGE = pg_catalog.format('schema "auth" holds objects that are not mfa_auth''s: %s', foreign_objects),
            HINT = 'Whoever made them could have made them look like mfa_auth''s: review them, and move or drop what does not belong there.';
    END IF;
END
$check$;

-- 2. The SECURITY DEFINER SQL functions get SQL-standard bodies (BEGIN ATOMIC): parsed once,
--    bound to the extension's objects by OID, so no rename of schema auth can redirect them.
--    (CREATE OR REPLACE keeps their owner and grants.) PostgreSQL 13 has no such bodies: there
--    they keep 0.2.0's, as a fresh 0.3.0 install on 13 has them (sql/pg13/).
DO $upgrade$
BEGIN
    IF pg_catalog.current_setting('server_version_num')::integer OPERATOR(pg_catalog.>=) 140000 THEN
        EXECUTE $definitions$
CREATE OR REPLACE FUNCTION auth.my_factors()
RETURNS TABLE (factor_id uuid, friendly_name text, factor_type auth.factor_type,
               status auth.factor_status, created_at timestamptz, updated_at timestamptz,
               last_challenged_at timestamptz)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
    SELECT f.id, f.friendly_name, f.factor_type, f.status, f.created_at, f.updated_at,
           f.last_challenged_at
      FROM auth.mfa_factors f
     WHERE f.user_id = auth.uid()
     ORDER BY f.created_at;
END;
        $definitions$;
        EXECUTE $definitions$
CREATE OR REPLACE FUNCTION auth.session_amr(session_id uuid, user_id uuid) RETURNS jsonb
LANGUAGE sql STABLE PARALLEL SAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
    SELECT COALESCE(
        jsonb_agg(jsonb_build_object('method', a.authentication_method,
                                     'timestamp', floor(extract(epoch FROM a.updated_at))::bigint)
                  ORDER BY a.updated_at DESC, a.authentication_method),
        '[]'::jsonb)
      FROM auth.mfa_amr_claims a
     WHERE a.session_id = $1
       AND (a.authentication_method <> ALL ('{totp,mfa/phone,mfa/webauthn,mfa/recovery_code}'::text[])
            OR EXISTS (SELECT 1 FROM auth.mfa_verified_claims v
                        WHERE v.session_id = a.session_id
                          AND v.authentication_method = a.authentication_method
                          AND ($2 IS NULL OR v.user_id = $2)));
END;
        $definitions$;
        EXECUTE $definitions$
CREATE OR REPLACE FUNCTION auth.session_amr(session_id uuid) RETURNS jsonb
LANGUAGE sql STABLE PARALLEL SAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
    SELECT auth.session_amr($1, NULL);
END;
        $definitions$;
        EXECUTE $definitions$
CREATE OR REPLACE FUNCTION auth.session_aal(session_id uuid, user_id uuid) RETURNS auth.aal_level
LANGUAGE sql STABLE PARALLEL SAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
    SELECT CASE WHEN EXISTS (SELECT 1 FROM auth.mfa_verified_claims v
                              WHERE v.session_id = $1 AND ($2 IS NULL OR v.user_id = $2))
                THEN 'aal2' ELSE 'aal1' END::auth.aal_level;
END;
        $definitions$;
        EXECUTE $definitions$
CREATE OR REPLACE FUNCTION auth.session_aal(session_id uuid) RETURNS auth.aal_level
LANGUAGE sql STABLE PARALLEL SAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
    SELECT auth.session_aal($1, NULL);
END;
        $definitions$;
        EXECUTE $definitions$
CREATE OR REPLACE FUNCTION auth.recovery_codes_status(user_id uuid)
RETURNS TABLE (total integer, remaining integer, created_at timestamptz)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
    SELECT count(c.id)::integer, (count(c.id) FILTER (WHERE c.consumed_at IS NULL))::integer, min(c.created_at)
      FROM auth.mfa_recovery_code_sets s
      LEFT JOIN auth.mfa_recovery_codes c ON c.mfa_recovery_code_set_id = s.id
     WHERE s.user_id = $1
     GROUP BY s.id;
END;
        $definitions$;
        EXECUTE $definitions$
CREATE OR REPLACE FUNCTION auth.my_recovery_codes_status()
RETURNS TABLE (total integer, remaining integer, created_at timestamptz)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
    SELECT * FROM auth.recovery_codes_status(auth.uid());
END;
        $definitions$;
    END IF;
END
$upgrade$;

-- 3. Enforcement helpers for policies (sql/enforcement.sql): auth.aal_next(),
--    auth.aal_next(uuid) for service code, auth.mfa_satisfied().
CREATE FUNCTION auth.aal_next() RETURNS auth.aal_level
LANGUAGE c STABLE PARALLEL RESTRICTED
AS 'MODULE_PATHNAME', 'aal_next_wrapper';

CREATE FUNCTION auth.aal_next(user_id uuid) RETURNS auth.aal_level
LANGUAGE c STABLE STRICT PARALLEL RESTRICTED
AS 'MODULE_PATHNAME', 'aal_next_of_wrapper';

CREATE FUNCTION auth.mfa_satisfied() RETURNS boolean
LANGUAGE c STABLE PARALLEL RESTRICTED
AS 'MODULE_PATHNAME', 'mfa_auth_mfa_satisfied';

REVOKE EXECUTE ON FUNCTION auth.aal_next(), auth.aal_next(uuid), auth.mfa_satisfied() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION auth.aal_next(), auth.mfa_satisfied() TO PUBLIC;

-- 4. The audit trail (sql/audit.sql, the same statements): the readers' role mfa_auth_auditor,
--    table auth.mfa_audit_log, auth.cleanup_audit_log() and auth.audit_status().
DO $role$
DECLARE
    members text;
BEGIN
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname OPERATOR(pg_catalog.=) 'mfa_auth_auditor') THEN
        CREATE ROLE mfa_auth_auditor NOLOGIN;
    ELSE
        SELECT pg_catalog.string_agg(m.member::pg_catalog.regrole::pg_catalog.text, ', ') INTO members
          FROM pg_catalog.pg_auth_members m
         WHERE m.roleid OPERATOR(pg_catalog.=) 'mfa_auth_auditor'::pg_catalog.regrole;
        IF members IS NOT NULL THEN
            RAISE WARNING USING
                MESSAGE = pg_catalog.format('role "mfa_auth_auditor" exists and has members (%s): they can read auth.mfa_audit_log', members),
                HINT = 'If they should not, REVOKE mfa_auth_auditor FROM them.';
        END IF;
    END IF;
END
$role$;

CREATE TABLE auth.mfa_audit_log (
    id         uuid        NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    event      text        NOT NULL,
    outcome    text,
    user_id    uuid,
    factor_id  uuid,
    session_id uuid,
    ip_address inet,
    payload    jsonb       NOT NULL DEFAULT '{}',
    CONSTRAINT mfa_audit_log_pkey PRIMARY KEY (id)
);
-- Retention and time-window reads walk this one; per-user history the other.
CREATE INDEX mfa_audit_log_created_at_idx ON auth.mfa_audit_log USING btree (created_at DESC);
CREATE INDEX mfa_audit_log_user_id_created_at_idx ON auth.mfa_audit_log USING btree (user_id, created_at DESC);
COMMENT ON TABLE auth.mfa_audit_log IS 'mfa_auth: MFA events (enrollments, verifications and their failures, lockouts, recovery codes, key rotation, cleanups); readable by mfa_auth_auditor';

REVOKE ALL ON auth.mfa_audit_log FROM PUBLIC;
GRANT SELECT ON auth.mfa_audit_log TO mfa_auth_auditor;
-- pg_dump keeps its rows.
SELECT pg_catalog.pg_extension_config_dump('auth.mfa_audit_log', '');

CREATE FUNCTION auth.audit_status() RETURNS TABLE (
	"survives_rollback" bool,
	"capacity" INT,
	"queued" INT,
	"queued_total" bigint,
	"lost" bigint,
	"writers" INT
)
STRICT VOLATILE SECURITY DEFINER
SET search_path TO pg_catalog, pg_temp
LANGUAGE c
AS 'MODULE_PATHNAME', 'audit_status_wrapper';

CREATE FUNCTION auth.cleanup_audit_log(
	"older_than" interval DEFAULT NULL,
	"batch_size" INT DEFAULT 1000
) RETURNS bigint
VOLATILE SECURITY DEFINER
SET search_path TO pg_catalog, pg_temp
LANGUAGE c
AS 'MODULE_PATHNAME', 'cleanup_audit_log_wrapper';

REVOKE EXECUTE ON FUNCTION auth.audit_status(), auth.cleanup_audit_log(interval, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION auth.audit_status() TO mfa_auth_auditor;

-- 5. A database owner is not a superuser (docs/security.md, "Database owners"): the maintenance
--    procedures' variables get qualified types (sql/maintenance.sql, the same text). Unqualified,
--    `timestamptz` resolved under the caller's search_path, which the database's owner sets with
--    ALTER DATABASE ... SET search_path: a domain evil.timestamptz ran its owner's CHECK as
--    whoever called the procedure (a superuser, in the review). Also done by the library, no SQL
--    needed: every statement it runs is parsed under search_path = pg_catalog, pg_temp, and the
--    audit writer runs in an environment of its own, whatever the database's settings say.
CREATE OR REPLACE PROCEDURE auth.cleanup_challenges_batched(older_than interval DEFAULT '24 hours',
                                                 batch_size integer DEFAULT 1000)
LANGUAGE plpgsql
AS $$
DECLARE
    cutoff pg_catalog.timestamptz;
    deleted pg_catalog.int8;
BEGIN
    IF older_than IS NULL THEN
        RAISE EXCEPTION 'older_than must not be NULL' USING ERRCODE = '22004';
    END IF;
    IF older_than OPERATOR(pg_catalog.<) interval '0' THEN
        RAISE EXCEPTION 'invalid older_than: must not be negative' USING ERRCODE = '22023';
    END IF;
    cutoff := pg_catalog.clock_timestamp() OPERATOR(pg_catalog.-) older_than;
    LOOP
        deleted := auth.cleanup_challenges_batch(cutoff, batch_size);
        COMMIT;
        EXIT WHEN deleted OPERATOR(pg_catalog.<) batch_size;
    END LOOP;
END
$$;

-- Re-encrypts every TOTP secret not sealed with the current key, `batch_size` per
-- transaction (auth.rotate_secrets does one batch).
CREATE OR REPLACE PROCEDURE auth.rotate_secrets_batched(batch_size integer DEFAULT 1000)
LANGUAGE plpgsql
AS $$
DECLARE
    done pg_catalog.int8;
BEGIN
    LOOP
        done := auth.rotate_secrets(batch_size);
        COMMIT;
        EXIT WHEN done OPERATOR(pg_catalog.<) batch_size;
    END LOOP;
END
$$;
