"""Denials proven as an ordinary role over a real connection, not as superuser."""
import psycopg
import pytest

from conftest import connect

TABLES = ["auth.mfa_factors", "auth.mfa_challenges", "auth.mfa_amr_claims"]


@pytest.mark.parametrize("table", TABLES)
def test_plain_role_cannot_read_or_write_tables(plain_role, table):
    with connect(user=plain_role) as c:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            c.execute(f"SELECT * FROM {table}")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            c.execute(f"INSERT INTO {table} DEFAULT VALUES")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            c.execute(f"DELETE FROM {table}")


def test_plain_role_can_use_stateless_functions(plain_role):
    with connect(user=plain_role) as c:
        code = c.execute("SELECT auth.totp_generate('JBSWY3DPEHPK3PXP', to_timestamp(1700000000))").fetchone()[0]
        assert code == "324550"
