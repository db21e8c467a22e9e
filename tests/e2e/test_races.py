"""Checks made under the per-user lock see what the lock's previous holder committed, at READ
COMMITTED and at REPEATABLE READ (the attack of 0.2.0: the check read its snapshot before the
lock wait, so a password-only session won aal2 through a second first factor).

Each race: transaction T1 does something under the lock and stays open; T2 then runs the
competing call, which waits on the lock (polled in pg_stat_activity); T1 commits; T2's answer
must be the one it would have had without the race (never `true` for the second first
factor). Codes come from pyotp."""
import threading
import time
import uuid

import psycopg
import pytest

from conftest import connect, totp_now

LEVELS = ["read committed", "repeatable read"]


def begin(level):
    c = connect()
    c.execute(f"BEGIN ISOLATION LEVEL {level}")
    c.execute("SELECT 1")  # the transaction's snapshot is taken now, before the race
    return c


def run_blocked(conn, statement, args):
    """Runs `statement` on `conn` in a thread; returns (thread, box) where box gets
    ('ok', row) or ('error', exception)."""
    box = {}

    def go():
        try:
            box["result"] = ("ok", conn.execute(statement, args).fetchone())
        except psycopg.Error as e:
            box["result"] = ("error", e)

    t = threading.Thread(target=go)
    t.start()
    return t, box


def wait_blocked(conn):
    pid = conn.info.backend_pid
    with connect() as admin:
        for _ in range(200):
            if admin.execute("SELECT wait_event_type = 'Lock' FROM pg_stat_activity WHERE pid = %s",
                             (pid,)).fetchone()[0]:
                return
            time.sleep(0.025)
    raise AssertionError("the competing call never waited on the lock")


def _waits_on_a_lock(conn):
    with connect() as admin:
        return admin.execute("SELECT wait_event_type = 'Lock' FROM pg_stat_activity WHERE pid = %s",
                             (conn.info.backend_pid,)).fetchone()[0]


def race(level, first, second, must_wait=True):
    """T1 runs `first` (statement, args) and stays open; T2 runs `second` and waits; T1
    commits. Returns T1's row and T2's outcome, T2 ended by COMMIT (or ROLLBACK on error).
    Without `must_wait`, a T2 that finishes without waiting (the bug a test shows) is let be."""
    t1, t2 = begin(level), begin(level)
    try:
        row1 = t1.execute(*first).fetchone()
        thread, box = run_blocked(t2, *second)
        if must_wait:
            wait_blocked(t2)
        else:
            for _ in range(200):
                if "result" in box or _waits_on_a_lock(t2):
                    break
                time.sleep(0.025)
        t1.execute("COMMIT")
        thread.join(10)
        assert not thread.is_alive()
        outcome = box["result"]
        t2.execute("COMMIT" if outcome[0] == "ok" else "ROLLBACK")
        return row1, outcome
    finally:
        t1.close()
        t2.close()


@pytest.mark.parametrize("level", LEVELS)
def test_two_first_factors_verified_at_once_give_one_aal2(database, level):
    user, s1, s2 = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    with connect() as c:
        a, secret_a, _, _ = c.execute("SELECT * FROM auth.enroll_totp(%s, 'owner')", (user,)).fetchone()
        b, secret_b, _, _ = c.execute("SELECT * FROM auth.enroll_totp(%s, 'attacker')", (user,)).fetchone()
        c.execute("SELECT auth.create_challenge(%s, '10.0.0.1')", (a,))
        c.execute("SELECT auth.create_challenge(%s, '10.0.0.1')", (b,))
    verify = "SELECT auth.verify_factor(%s, %s, '10.0.0.1', %s)"
    row1, (kind, value) = race(level, (verify, (a, totp_now(secret_a), s1)), (verify, (b, totp_now(secret_b), s2)))
    assert row1[0] is True
    assert kind == "error", f"the second first factor verified: {value}"
    allowed = (psycopg.errors.InsufficientPrivilege, psycopg.errors.SerializationFailure)
    assert isinstance(value, allowed), value
    with connect() as c:
        statuses = dict(c.execute("SELECT id, status::text FROM auth.mfa_factors WHERE user_id = %s", (user,)).fetchall())
        assert statuses == {a: "verified", b: "unverified"}
        assert c.execute("SELECT auth.session_aal(%s, %s)::text", (s2, user)).fetchone()[0] == "aal1"
        assert c.execute("SELECT auth.session_aal(%s, %s)::text", (s1, user)).fetchone()[0] == "aal2"
    print(f"\n  {level}: T1 verified the first factor; T2 (the other first factor) got "
          f"{value.sqlstate}: {value.diag.message_primary}")


@pytest.mark.parametrize("level", LEVELS)
def test_two_enrollments_at_the_factor_limit_give_one_factor(database, level):
    user = uuid.uuid4()
    with connect() as c:
        for i in range(9):
            c.execute("SELECT auth.enroll_totp(%s, %s)", (user, f"f{i}"))
    enroll = "SELECT factor_id FROM auth.enroll_totp(%s, %s)"
    row1, (kind, value) = race(level, (enroll, (user, "tenth")), (enroll, (user, "eleventh")))
    assert kind == "error", "an eleventh factor was enrolled"
    assert isinstance(value, (psycopg.errors.ConfigurationLimitExceeded, psycopg.errors.SerializationFailure)), value
    with connect() as c:
        assert c.execute("SELECT count(*) FROM auth.mfa_factors WHERE user_id = %s", (user,)).fetchone()[0] == 10


@pytest.mark.parametrize("level", LEVELS)
def test_two_enrollments_with_one_name_give_one_factor(database, level):
    user = uuid.uuid4()
    enroll = "SELECT factor_id FROM auth.enroll_totp(%s, 'laptop')"
    row1, (kind, value) = race(level, (enroll, (user,)), (enroll, (user,)))
    assert kind == "error", "two factors named 'laptop'"
    assert isinstance(value, (psycopg.errors.UniqueViolation, psycopg.errors.SerializationFailure)), value
    if isinstance(value, psycopg.errors.UniqueViolation):
        assert "friendly_name already exists" in value.diag.message_primary
    with connect() as c:
        assert c.execute("SELECT count(*) FROM auth.mfa_factors WHERE user_id = %s", (user,)).fetchone()[0] == 1


@pytest.mark.parametrize("level", LEVELS)
def test_two_recovery_code_generations_leave_one_set(database, level):
    user, session = uuid.uuid4(), uuid.uuid4()
    with connect() as c:
        fid, secret, _, _ = c.execute("SELECT * FROM auth.enroll_totp(%s)", (user,)).fetchone()
        c.execute("SELECT auth.create_challenge(%s, '10.0.0.1')", (fid,))
        assert c.execute("SELECT auth.verify_factor(%s, %s, '10.0.0.1', %s)",
                         (fid, totp_now(secret), session)).fetchone()[0] is True
    generate = "SELECT array_agg(c) FROM auth.generate_recovery_codes(%s, %s) c"
    row1, (kind, value) = race(level, (generate, (user, session)), (generate, (user, session)))
    if kind == "error":  # REPEATABLE READ may refuse the second (it replaces a set it cannot see)
        assert isinstance(value, psycopg.errors.SerializationFailure), value
    with connect() as c:
        sets = c.execute("SELECT count(*) FROM auth.mfa_recovery_code_sets WHERE user_id = %s", (user,)).fetchone()[0]
        factors = c.execute("SELECT count(*) FROM auth.mfa_factors WHERE user_id = %s AND factor_type = 'recovery_code'",
                            (user,)).fetchone()[0]
        assert (sets, factors) == (1, 1)
        winner = value[0] if kind == "ok" else row1[0]
        # The codes of the call that committed last are the valid ones.
        assert c.execute("SELECT auth.verify_recovery_code(%s, %s, NULL, %s)",
                         (user, winner[0], uuid.uuid4())).fetchone()[0] is True
    print(f"\n  {level}: the second generation {'replaced the set' if kind == 'ok' else 'got ' + value.sqlstate}")


def _enrolled_with_codes(user, session):
    with connect() as c:
        fid, secret, _, _ = c.execute("SELECT * FROM auth.enroll_totp(%s)", (user,)).fetchone()
        c.execute("SELECT auth.create_challenge(%s, '10.0.0.1')", (fid,))
        assert c.execute("SELECT auth.verify_factor(%s, %s, '10.0.0.1', %s)",
                         (fid, totp_now(secret), session)).fetchone()[0] is True
    return fid


def _trust_state(user):
    with connect() as c:
        factors = c.execute("SELECT factor_type::text || '|' || status::text FROM auth.mfa_factors WHERE user_id = %s ORDER BY 1",
                            (user,)).fetchall()
        next_level = c.execute("SELECT auth.aal_next(%s)::text", (user,)).fetchone()[0]
    return [f[0] for f in factors], next_level


@pytest.mark.parametrize("level", LEVELS)
def test_unenrolling_the_last_factor_while_codes_are_generated_leaves_no_codes(database, level):
    """0.3.0: unenroll_factor took neither the per-user lock nor a fresh snapshot, so a
    generation still open when the user's last factor went survived it: the user was left with
    `recovery_code|verified` alone, aal_next = aal2, and a code of that set still raised a new
    session to aal2. Now the unenroll waits for the generation and removes its codes (or, at
    REPEATABLE READ, fails with 40001 and removes nothing)."""
    user, session = uuid.uuid4(), uuid.uuid4()
    fid = _enrolled_with_codes(user, session)
    generate = "SELECT array_agg(c) FROM auth.generate_recovery_codes(%s, %s) c"
    row1, (kind, value) = race(level, (generate, (user, session)), ("SELECT auth.unenroll_factor(%s)", (fid,)),
                               must_wait=False)
    factors, next_level = _trust_state(user)
    with connect() as c:
        try:
            code_works = c.execute("SELECT auth.verify_recovery_code(%s, %s, NULL, %s)",
                                   (user, row1[0][0], uuid.uuid4())).fetchone()[0]
        except psycopg.Error as e:
            code_works = e.sqlstate
    print(f"\n  {level}: unenroll {'succeeded' if kind == 'ok' else 'got ' + value.sqlstate}; left {factors}, "
          f"aal_next {next_level}, a code of the generated set: {code_works}")
    if kind == "ok":
        assert (factors, next_level) == ([], "aal1")
        assert code_works is not True
    else:
        assert isinstance(value, psycopg.errors.SerializationFailure), value
        assert factors == ["recovery_code|verified", "totp|verified"]


@pytest.mark.parametrize("level", LEVELS)
def test_codes_generated_while_the_last_factor_is_unenrolled_are_refused(database, level):
    """The other order: the unenroll holds the lock; the generation waits, then finds no
    verified factor (P0001-style refusal), so nothing is left."""
    user, session = uuid.uuid4(), uuid.uuid4()
    fid = _enrolled_with_codes(user, session)
    generate = "SELECT array_agg(c) FROM auth.generate_recovery_codes(%s, %s) c"
    _, (kind, value) = race(level, ("SELECT auth.unenroll_factor(%s)", (fid,)), (generate, (user, session)),
                            must_wait=False)
    factors, next_level = _trust_state(user)
    print(f"\n  {level}: the generation {'succeeded' if kind == 'ok' else 'got ' + value.sqlstate}; left {factors}, "
          f"aal_next {next_level}")
    assert kind == "error", "a generation after the last factor went must be refused"
    assert (factors, next_level) == ([], "aal1")
