"""Recovery codes over real connections: the whole story, the 16-way race for one code, the
lockout (and that a ROLLBACK does not undo a failure), and what the table shows."""
import threading
import uuid

import psycopg
import pytest

from conftest import connect, totp_now


def user_with_aal2_session(c):
    """A user with a verified TOTP factor, and the session that verified it (aal2)."""
    user, session = str(uuid.uuid4()), str(uuid.uuid4())
    factor, secret = c.execute("SELECT factor_id, secret FROM auth.enroll_totp(%s)", (user,)).fetchone()
    cid = c.execute("SELECT challenge_id FROM auth.create_challenge(%s, '10.0.0.1')", (factor,)).fetchone()[0]
    assert c.execute("SELECT auth.verify_challenge(%s, %s, NULL, %s)", (cid, totp_now(secret), session)).fetchone()[0]
    return user, session, factor


def generate(c, user, session, count=10):
    return [r[0] for r in c.execute("SELECT auth.generate_recovery_codes(%s, %s, %s)", (user, session, count))]


def verify(c, user, code, session=None):
    return c.execute("SELECT auth.verify_recovery_code(%s, %s, NULL, %s)", (user, code, session)).fetchone()[0]


def test_the_whole_story(admin):
    user, session, _ = user_with_aal2_session(admin)
    # Generating from an aal1 session is refused, with a clear SQLSTATE.
    with pytest.raises(psycopg.errors.InsufficientPrivilege, match="aal2 session is required to generate recovery codes"):
        generate(admin, user, str(uuid.uuid4()))
    codes = generate(admin, user, session)
    assert len(codes) == 10 and len(set(codes)) == 10
    assert all(len(c) == 19 and c.count("-") == 3 for c in codes)
    # A new session, aal1, recovers with one code and becomes aal2 with the method in amr.
    lost = str(uuid.uuid4())
    assert admin.execute("SELECT auth.session_aal(%s, %s)::text", (lost, user)).fetchone()[0] == "aal1"
    assert verify(admin, user, codes[3].upper().replace("-", " "), lost) is True
    assert admin.execute("SELECT auth.session_aal(%s, %s)::text", (lost, user)).fetchone()[0] == "aal2"
    methods = [m["method"] for m in admin.execute("SELECT auth.session_amr(%s, %s)", (lost, user)).fetchone()[0]]
    assert methods == ["mfa/recovery_code"]
    # The same code again: false.
    assert verify(admin, user, codes[3], str(uuid.uuid4())) is False
    assert admin.execute("SELECT total, remaining FROM auth.recovery_codes_status(%s)", (user,)).fetchone() == (10, 9)
    # Regenerating invalidates the old set.
    fresh = generate(admin, user, session, 4)
    assert verify(admin, user, codes[0]) is False
    assert verify(admin, user, fresh[0]) is True
    # No plaintext or unkeyed hash of any code in the table (the test cluster has a master key).
    rows = admin.execute("SELECT r::text, code_hash FROM auth.mfa_recovery_codes r").fetchall()
    assert rows and all(h.startswith("r2$") for _, h in rows)
    for code in codes + fresh:
        for form in (code, code.replace("-", ""), code.upper()):
            assert all(form not in text for text, _ in rows)


def test_sixteen_connections_one_code_exactly_one_true(admin):
    user, session, _ = user_with_aal2_session(admin)
    code = generate(admin, user, session)[0]
    results, barrier = [], threading.Barrier(16)

    def attempt():
        with connect() as c:
            barrier.wait()
            try:
                results.append(verify(c, user, code, str(uuid.uuid4())))
            except psycopg.errors.ConfigurationLimitExceeded:
                results.append("locked")

    threads = [threading.Thread(target=attempt) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results.count(True) == 1, results
    assert len(results) == 16


def test_lockout_survives_rollback(admin):
    user, session, _ = user_with_aal2_session(admin)
    code = generate(admin, user, session)[0]
    limit = int(admin.execute("SHOW mfa_auth.max_failed_attempts").fetchone()[0])
    for _ in range(limit):
        with admin.transaction(force_rollback=True):
            assert verify(admin, user, "aaaa-bbbb-cccc-dddd") is False
    assert admin.execute("SELECT failed_verification_count FROM auth.mfa_recovery_code_sets WHERE user_id = %s",
                         (user,)).fetchone()[0] == 0, "each failure was rolled back in the row ..."
    with pytest.raises(psycopg.errors.ConfigurationLimitExceeded, match="locked"):
        verify(admin, user, code)  # ... and still counted: even the right code is refused now


def test_self_service_in_a_database_session(plain_role):
    with connect(user=plain_role) as me:
        factor, secret = me.execute("SELECT factor_id, secret FROM auth.enroll_my_totp('app')").fetchone()
        with pytest.raises(psycopg.errors.ObjectNotInPrerequisiteState):
            me.execute("SELECT auth.generate_my_recovery_codes()").fetchall()
        assert me.execute("SELECT auth.mfa_verify(%s)", (totp_now(secret),)).fetchone()[0]
        codes = [r[0] for r in me.execute("SELECT auth.generate_my_recovery_codes(6)")]
        assert len(codes) == 6
        assert me.execute("SELECT total, remaining FROM auth.my_recovery_codes_status()").fetchone() == (6, 6)
    with connect(user=plain_role) as me:
        assert me.execute("SELECT auth.aal()::text").fetchone()[0] == "aal1"
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            me.execute("SELECT auth.generate_my_recovery_codes()").fetchall()
        assert me.execute("SELECT auth.mfa_verify_recovery_code(%s)", (codes[1],)).fetchone()[0] is True
        assert me.execute("SELECT auth.aal()::text").fetchone()[0] == "aal2"
        assert [m["method"] for m in me.execute("SELECT auth.amr()").fetchone()[0]] == ["mfa/recovery_code"]
        # The table itself stays closed to the role.
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            me.execute("SELECT * FROM auth.mfa_recovery_codes")
