-- The audit trail: one row per MFA event (src/audit.rs writes it; docs/reference.md lists the
-- events). In the shape of Supabase Auth's auth.audit_log_entries where it fits (id, payload,
-- created_at, ip_address), with typed columns for what a query filters on.
--
-- Closed by default: only members of mfa_auth_auditor may read it, and no role but the
-- extension's own functions and writer writes to it. It never holds a secret, a code, a code
-- hash or a key: the payload is built from fixed fields (ids, names, counts, outcomes).

-- The readers' role (cluster-wide, so it may exist already: from this extension in another
-- database, or made by someone else, whose members would then read the trail: named in a
-- WARNING).
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
