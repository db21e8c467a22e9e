"""Denials for the flow, as ordinary roles over real connections."""
import uuid

import psycopg
import pytest

from conftest import SERVICE_FUNCTIONS, connect


@pytest.mark.parametrize("fn", SERVICE_FUNCTIONS)
def test_service_functions_need_a_grant(plain_role, fn):
    name, args = fn.split("(")
    nargs = len([a for a in args.rstrip(")").split(",") if a.strip()])
    placeholders = ", ".join(["NULL"] * nargs)
    with connect(user=plain_role) as c:
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="permission denied for function"):
            c.execute(f"SELECT {name}({placeholders})")


def test_granted_role_still_cannot_read_secrets_or_write_claims(service_role):
    with connect(user=service_role) as c:
        c.execute("SELECT * FROM auth.enroll_totp(%s)", (uuid.uuid4(),))
        for sql in ["SELECT secret FROM auth.mfa_factors", "SELECT otp_code FROM auth.mfa_challenges",
                    "INSERT INTO auth.mfa_amr_claims (session_id, authentication_method) VALUES (gen_random_uuid(), 'totp')",
                    "UPDATE auth.mfa_factors SET failed_attempts = 0"]:
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                c.execute(sql)


def test_security_definer_cannot_be_hijacked_through_search_path(service_role):
    """A caller puts look-alike functions, operators and tables first on its search_path;
    the SECURITY DEFINER functions pin search_path and qualify every name, so none is used."""
    with connect() as admin:
        admin.execute(f"CREATE SCHEMA IF NOT EXISTS evil_{service_role} AUTHORIZATION {service_role}")
    schema = f"evil_{service_role}"
    with connect(user=service_role) as c:
        c.execute(f"""
            CREATE FUNCTION {schema}.clock_timestamp() RETURNS timestamptz LANGUAGE sql
                AS $$ SELECT 'infinity'::timestamptz $$;
            CREATE FUNCTION {schema}.make_interval(secs double precision) RETURNS interval LANGUAGE sql
                AS $$ SELECT interval '1000 years' $$;
            CREATE FUNCTION {schema}.uuid_eq_evil(uuid, uuid) RETURNS boolean LANGUAGE sql AS $$ SELECT true $$;
            CREATE OPERATOR {schema}.= (LEFTARG = uuid, RIGHTARG = uuid, FUNCTION = {schema}.uuid_eq_evil);
            CREATE TABLE {schema}.mfa_challenges (id uuid, factor_id uuid, created_at timestamptz,
                verified_at timestamptz, ip_address inet, otp_code text);
            CREATE FUNCTION {schema}.evil_trap() RETURNS trigger LANGUAGE plpgsql
                AS $$ BEGIN RAISE EXCEPTION 'hijacked'; END $$;
            SET search_path = {schema}, public, pg_catalog;
        """)
        fid = c.execute("SELECT factor_id FROM auth.enroll_totp(%s)", (uuid.uuid4(),)).fetchone()[0]
        cid = c.execute("SELECT challenge_id FROM auth.create_challenge(%s, '10.0.0.1')", (fid,)).fetchone()[0]
        # Wrong code on a real, fresh challenge: false (neither "expired" via the fake clock nor
        # "verified" via the always-true operator), and nothing landed in the look-alike table.
        assert c.execute("SELECT auth.verify_challenge(%s, '000000')", (cid,)).fetchone()[0] is False
        assert c.execute(f"SELECT count(*) FROM {schema}.mfa_challenges").fetchone()[0] == 0
        with pytest.raises(psycopg.errors.NoDataFound):
            c.execute("SELECT auth.verify_challenge(%s, '000000')", (uuid.uuid4(),))
