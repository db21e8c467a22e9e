"""Fixtures for end-to-end tests: real TCP connections to the throwaway cluster that
scripts/test.sh starts (PGHOST/PGPORT/PGUSER point at it, PGUSER is a superuser)."""
import os
import uuid

import psycopg
import pytest

DB = "mfa_auth_e2e"


def connect(dbname=DB, user=None, **kw):
    return psycopg.connect(
        host=os.environ.get("PGHOST", "127.0.0.1"),
        port=os.environ.get("PGPORT", "5432"),
        user=user or os.environ.get("PGUSER", "postgres"),
        dbname=dbname,
        autocommit=True,
        **kw,
    )


@pytest.fixture(scope="session")
def database():
    with connect("postgres") as c:
        c.execute(f"DROP DATABASE IF EXISTS {DB} WITH (FORCE)")
        c.execute(f"CREATE DATABASE {DB}")
    with connect() as c:
        c.execute("CREATE EXTENSION mfa_auth")
    yield DB


@pytest.fixture
def admin(database):
    with connect() as c:
        yield c


SERVICE_FUNCTIONS = [
    "auth.enroll_totp(uuid, text, text, text)",
    "auth.enroll_phone(uuid, text, text)",
    "auth.unenroll_factor(uuid)",
    "auth.create_challenge(uuid, inet)",
    "auth.verify_challenge(uuid, text, inet, uuid)",
    "auth.verify_factor(uuid, text, inet, uuid)",
    "auth.cleanup_challenges(interval, integer)",
    "auth.record_amr(uuid, text)",
    "auth.session_amr(uuid)",
    "auth.session_aal(uuid)",
]


@pytest.fixture
def service_role(plain_role):
    """A non-superuser role granted EXECUTE on the service functions, as a DBA would."""
    with connect() as c:
        for f in SERVICE_FUNCTIONS:
            c.execute(f"GRANT EXECUTE ON FUNCTION {f} TO {plain_role}")
    yield plain_role


@pytest.fixture
def plain_role(database):
    """A fresh LOGIN role with no privileges beyond PUBLIC's; dropped afterwards."""
    name = "e2e_" + uuid.uuid4().hex[:12]
    with connect() as c:
        c.execute(f"CREATE ROLE {name} LOGIN")
    yield name
    with connect() as c:
        c.execute(f"DROP OWNED BY {name}")
        c.execute(f"DROP ROLE {name}")
