"""Verified state for RLS and psql sessions, as ordinary roles over real connections,
with codes from oathtool."""
import json
import subprocess
import uuid

import psycopg
import pytest

from conftest import PRELOADED, connect


def oathtool(secret):
    return subprocess.run(["oathtool", "--totp", "-b", secret], check=True, capture_output=True, text=True).stdout.strip()


def count(conn, table):
    return conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]


def test_psql_walkthrough_two_sessions_of_one_role(plain_role, secured_table):
    with connect(user=plain_role) as a, connect(user=plain_role) as b:
        assert a.execute("SELECT auth.uid() = auth.role_user_id(current_user)").fetchone()[0]
        assert a.execute("SELECT auth.uid()").fetchone() == b.execute("SELECT auth.uid()").fetchone()
        assert a.execute("SELECT auth.session_id()").fetchone() != b.execute("SELECT auth.session_id()").fetchone()
        factor_id, secret, uri, qr = a.execute("SELECT * FROM auth.enroll_my_totp('laptop')").fetchone()
        assert "█" in qr and uri.startswith("otpauth://totp/")
        assert count(a, secured_table) == 0 and count(b, secured_table) == 0
        assert a.execute("SELECT auth.aal()").fetchone()[0] == "aal1"
        assert a.execute("SELECT auth.mfa_verify('000000')").fetchone()[0] is False
        assert a.execute("SELECT auth.mfa_verify(%s)", (oathtool(secret),)).fetchone()[0] is True
        assert a.execute("SELECT auth.aal()").fetchone()[0] == "aal2"
        assert [m["method"] for m in a.execute("SELECT auth.amr()").fetchone()[0]] == ["totp"]
        assert count(a, secured_table) == 3   # only the session that verified
        assert count(b, secured_table) == 0   # the same role's other session stays aal1
        assert b.execute("SELECT auth.aal()").fetchone()[0] == "aal1"
        rows = a.execute("SELECT factor_id, friendly_name, factor_type::text, status::text FROM auth.my_factors()").fetchall()
        assert rows == [(factor_id, "laptop", "totp", "verified")]


def test_the_aal_of_a_statement_is_read_once_and_follows_verification(plain_role, secured_table):
    with connect(user=plain_role) as c:
        _, secret, _, _ = c.execute("SELECT * FROM auth.enroll_my_totp()").fetchone()
        # Same transaction: not verified, then verified; each statement sees the current state.
        c.execute("BEGIN")
        assert count(c, secured_table) == 0
        if not PRELOADED:
            # Not preloaded, a failed attempt would be undone by ROLLBACK: refused inside a
            # transaction block (fail closed), and the statements after it see the state of
            # an autocommit verification.
            with pytest.raises(psycopg.errors.ActiveSqlTransaction):
                c.execute("SELECT auth.mfa_verify(%s)", (oathtool(secret),))
            c.execute("ROLLBACK")
            assert c.execute("SELECT auth.mfa_verify(%s)", (oathtool(secret),)).fetchone()[0]
            c.execute("BEGIN")
        else:
            assert c.execute("SELECT auth.mfa_verify(%s)", (oathtool(secret),)).fetchone()[0]
        assert count(c, secured_table) == 3
        c.execute("COMMIT")


def test_forged_claims_are_ignored(plain_role, secured_table):
    with connect(user=plain_role) as victim:
        _, secret, _, _ = victim.execute("SELECT * FROM auth.enroll_my_totp()").fetchone()
        assert victim.execute("SELECT auth.mfa_verify(%s)", (oathtool(secret),)).fetchone()[0]
        victim_session = victim.execute("SELECT auth.session_id()").fetchone()[0]
        victim_uid = victim.execute("SELECT auth.uid()").fetchone()[0]
        with connect(user=plain_role) as attacker:
            attacker.execute("SELECT set_config('request.jwt.claims', %s, false)",
                             (json.dumps({"sub": str(victim_uid), "session_id": str(victim_session),
                                          "aal": "aal2", "role": "authenticated"}),))
            assert attacker.execute("SELECT auth.session_id()").fetchone()[0] != victim_session
            assert attacker.execute("SELECT auth.aal()").fetchone()[0] == "aal1"
            assert count(attacker, secured_table) == 0
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                attacker.execute(f"SET mfa_auth.jwt_claims_roles = '{plain_role}'")
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                attacker.execute(f"SELECT set_config('mfa_auth.jwt_claims_roles', '{plain_role}', false)")


def test_a_listed_role_gets_gateway_mode(plain_role, secured_table):
    """A role listed in mfa_auth.jwt_claims_roles (set by a superuser) takes sub and
    session_id from request.jwt.claims, as PostgREST sets them; aal still comes from the table."""
    with connect() as admin:
        admin.execute(f"ALTER ROLE {plain_role} SET mfa_auth.jwt_claims_roles = '{plain_role}'")
    user, session = uuid.uuid4(), uuid.uuid4()
    with connect(user=plain_role) as gw:
        claims = json.dumps({"sub": str(user), "session_id": str(session), "aal": "aal2"})
        gw.execute("SELECT set_config('request.jwt.claims', %s, false)", (claims,))
        assert gw.execute("SELECT auth.uid(), auth.session_id()").fetchone() == (user, session)
        assert gw.execute("SELECT auth.aal()").fetchone()[0] == "aal1"  # the "aal" claim is not trusted
        _, secret, _, _ = gw.execute("SELECT * FROM auth.enroll_my_totp()").fetchone()
        assert gw.execute("SELECT auth.mfa_verify(%s)", (oathtool(secret),)).fetchone()[0]
        assert gw.execute("SELECT auth.aal()").fetchone()[0] == "aal2"
        assert count(gw, secured_table) == 3
        # Another request of the gateway, another session: aal1 again.
        gw.execute("SELECT set_config('request.jwt.claims', %s, false)",
                   (json.dumps({"sub": str(user), "session_id": str(uuid.uuid4())}),))
        assert gw.execute("SELECT auth.aal()").fetchone()[0] == "aal1"
        # No claims at all: no user.
        gw.execute("SELECT set_config('request.jwt.claims', '', false)")
        assert gw.execute("SELECT auth.uid(), auth.session_id()").fetchone() == (None, None)
        with pytest.raises(psycopg.errors.InvalidAuthorizationSpecification, match="no authenticated user"):
            gw.execute("SELECT auth.mfa_verify('123456')")
    with connect() as admin:
        # The factor belongs to the claimed user, not to the gateway's role.
        owners = admin.execute("SELECT DISTINCT user_id FROM auth.mfa_factors WHERE user_id IN (%s, auth.role_user_id(%s))",
                               (user, plain_role)).fetchall()
        assert owners == [(user,)]


def test_step_up_freshness(plain_role):
    with connect(user=plain_role) as c, connect() as admin:
        _, secret, _, _ = c.execute("SELECT * FROM auth.enroll_my_totp()").fetchone()
        assert c.execute("SELECT auth.mfa_verified_within('5 minutes')").fetchone()[0] is False
        assert c.execute("SELECT auth.mfa_verify(%s)", (oathtool(secret),)).fetchone()[0]
        assert c.execute("SELECT auth.mfa_verified_within('5 minutes')").fetchone()[0] is True
        session = c.execute("SELECT auth.session_id()").fetchone()[0]
        # Age the claim instead of sleeping.
        admin.execute("UPDATE auth.mfa_amr_claims SET updated_at = updated_at - interval '6 minutes' WHERE session_id = %s", (session,))
        assert c.execute("SELECT auth.mfa_verified_within('5 minutes')").fetchone()[0] is False
        assert c.execute("SELECT auth.mfa_verified_within('10 minutes')").fetchone()[0] is True
        assert c.execute("SELECT auth.aal()").fetchone()[0] == "aal2"
        with pytest.raises(psycopg.errors.InvalidParameterValue):
            c.execute("SELECT auth.mfa_verified_within('-1 minute')")


def test_self_service_isolation(database):
    with connect() as admin:
        a, b = "e2e_a_" + uuid.uuid4().hex[:8], "e2e_b_" + uuid.uuid4().hex[:8]
        admin.execute(f"CREATE ROLE {a} LOGIN; CREATE ROLE {b} LOGIN")
    try:
        with connect(user=a) as ca, connect(user=b) as cb:
            fa, secret_a, _, _ = ca.execute("SELECT * FROM auth.enroll_my_totp('a')").fetchone()
            fb, secret_b, _, _ = cb.execute("SELECT * FROM auth.enroll_my_totp('b')").fetchone()
            # A lists only its own factor.
            assert [r[0] for r in ca.execute("SELECT factor_id FROM auth.my_factors()").fetchall()] == [fa]
            # A cannot verify with B's factor, even with B's right code...
            with pytest.raises(psycopg.errors.NoDataFound):
                ca.execute("SELECT auth.mfa_verify(%s, %s)", (oathtool(secret_b), fb))
            # ...nor unenroll it; the message is the same as for a factor that does not exist.
            with pytest.raises(psycopg.errors.NoDataFound, match="MFA factor not found"):
                ca.execute("SELECT auth.unenroll_my_factor(%s)", (fb,))
            with pytest.raises(psycopg.errors.NoDataFound, match="MFA factor not found"):
                ca.execute("SELECT auth.unenroll_my_factor(%s)", (uuid.uuid4(),))
            # B's factor is intact and still works for B.
            assert cb.execute("SELECT auth.mfa_verify(%s)", (oathtool(secret_b),)).fetchone()[0]
            # A can remove its own.
            ca.execute("SELECT auth.unenroll_my_factor(%s)", (fa,))
            assert ca.execute("SELECT count(*) FROM auth.my_factors()").fetchone()[0] == 0
            # Service functions stay closed to both.
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                ca.execute("SELECT auth.unenroll_factor(%s)", (fb,))
    finally:
        with connect() as admin:
            admin.execute(f"DROP ROLE {a}; DROP ROLE {b}")


def test_several_factors_need_a_factor_id(plain_role):
    with connect(user=plain_role) as c:
        f1, s1, _, _ = c.execute("SELECT * FROM auth.enroll_my_totp('one')").fetchone()
        c.execute("SELECT * FROM auth.enroll_my_totp('two')")
        with pytest.raises(psycopg.errors.CardinalityViolation, match="pass factor_id"):
            c.execute("SELECT auth.mfa_verify('123456')")
        assert c.execute("SELECT auth.mfa_verify(%s, %s)", (oathtool(s1), f1)).fetchone()[0]


def test_discard_all_resets_the_session(plain_role, secured_table):
    with connect(user=plain_role) as c:
        _, secret, _, _ = c.execute("SELECT * FROM auth.enroll_my_totp()").fetchone()
        assert c.execute("SELECT auth.mfa_verify(%s)", (oathtool(secret),)).fetchone()[0]
        before = c.execute("SELECT auth.session_id()").fetchone()[0]
        assert count(c, secured_table) == 3
        c.execute("DISCARD ALL")
        after = c.execute("SELECT auth.session_id()").fetchone()[0]
        assert after != before
        assert c.execute("SELECT auth.aal()").fetchone()[0] == "aal1"
        assert count(c, secured_table) == 0
        assert c.execute("SELECT auth.session_id()").fetchone()[0] == after  # stable until the next DISCARD


def _plan_nodes(node):
    yield node
    for child in node.get("Plans", []):
        yield from _plan_nodes(child)


def test_the_mfa_if_enrolled_policy_keeps_a_parallel_plan(plain_role, database):
    """A restrictive policy `USING ((SELECT auth.mfa_satisfied()))` on a million rows: the
    helper runs once, in an InitPlan, and the scan stays parallel; written without the
    (SELECT ...) the PARALLEL RESTRICTED helper makes the scan serial. Both answer the same."""
    table = "big_" + uuid.uuid4().hex[:8]
    with connect() as c:
        c.execute(f"""
            CREATE TABLE {table} AS SELECT g AS id, md5(g::text) AS body FROM generate_series(1, 1000000) g;
            ANALYZE {table};
            ALTER TABLE {table} ENABLE ROW LEVEL SECURITY;
            CREATE POLICY readable ON {table} FOR SELECT USING (true);
            CREATE POLICY mfa_if_enrolled ON {table} AS RESTRICTIVE FOR SELECT USING ((SELECT auth.mfa_satisfied()));
            GRANT SELECT ON {table} TO {plain_role};
        """)
    query = f"SELECT count(*) FROM {table} WHERE body LIKE 'a%%'"
    try:
        with connect(user=plain_role) as a, connect(user=plain_role) as b:
            with connect() as c:
                expected = c.execute(query).fetchone()   # the superuser bypasses the policies

            def explain(conn):
                plan = conn.execute(f"EXPLAIN (ANALYZE, FORMAT JSON) {query}").fetchone()[0][0]["Plan"]
                nodes = list(_plan_nodes(plan))
                gathers = [n for n in nodes if n["Node Type"] in ("Gather", "Gather Merge")]
                scans = [n for n in nodes if n["Node Type"] == "Seq Scan"]
                init = [n for n in nodes if n.get("Parent Relationship") == "InitPlan"]
                return gathers, scans, init

            # No factor: visible, through a parallel scan with the helper in one InitPlan.
            gathers, scans, init = explain(a)
            assert gathers and gathers[0]["Workers Launched"] >= 1, gathers
            assert all(s.get("Parallel Aware") for s in scans), scans
            assert len(init) == 1 and init[0]["Actual Loops"] == 1, init
            assert a.execute(query).fetchone() == expected and expected[0] > 0
            text = a.execute(f"EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) {query}").fetchall()
            print("\n  the mfa_if_enrolled policy over 1 M rows, as a role without a factor:\n"
                  + "\n".join("    " + r[0] for r in text))
            # A verified factor in session a: a sees the rows, b (no MFA) sees none, both parallel.
            _, secret, _, _ = a.execute("SELECT * FROM auth.enroll_my_totp()").fetchone()
            assert a.execute("SELECT auth.mfa_verify(%s)", (oathtool(secret),)).fetchone()[0]
            assert a.execute(query).fetchone() == expected
            assert b.execute(query).fetchone() == (0,)
            gathers, _, _ = explain(b)
            assert gathers, "a parallel plan for the session the policy hides the rows from"
            # Without the (SELECT ...) wrapper the scan is serial (the helper is PARALLEL RESTRICTED).
            with connect() as c:
                c.execute(f"ALTER POLICY mfa_if_enrolled ON {table} USING (auth.mfa_satisfied())")
            gathers, scans, init = explain(a)
            assert not gathers and scans and not init
            assert a.execute(query).fetchone() == expected and b.execute(query).fetchone() == (0,)
    finally:
        with connect() as c:
            c.execute(f"DROP TABLE {table}")
