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
    # Each failure was rolled back in the caller's transaction, and still counted: even the
    # right code is refused now (shared memory) ...
    with pytest.raises(psycopg.errors.ConfigurationLimitExceeded, match="locked"):
        verify(admin, user, code)
    # ... and the audit writer wrote the count and the lock into the set's row in its own
    # transaction (tests/e2e/test_durable_counts.py: through a crash).
    import time
    t0 = time.time()
    while (admin.execute("SELECT failed_verification_count, verification_locked_until IS NOT NULL "
                         "FROM auth.mfa_recovery_code_sets WHERE user_id = %s", (user,)).fetchone() != (limit, True)
           and time.time() - t0 < 10):
        time.sleep(0.05)
    assert admin.execute("SELECT failed_verification_count, verification_locked_until IS NOT NULL "
                         "FROM auth.mfa_recovery_code_sets WHERE user_id = %s", (user,)).fetchone() == (limit, True)


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


def test_a_20_mb_code_is_a_wrong_code_read_no_further(admin):
    """A huge code is not looked at beyond its length: false and counted, at once."""
    import time
    user, session, _ = user_with_aal2_session(admin)
    generate(admin, user, session)
    t = time.perf_counter()
    assert admin.execute("SELECT auth.verify_recovery_code(%s, repeat('7kq4-', 4 * 1024 * 1024))",
                         (user,)).fetchone()[0] is False
    elapsed = time.perf_counter() - t
    assert admin.execute("SELECT failed_verification_count FROM auth.mfa_recovery_code_sets WHERE user_id = %s",
                         (user,)).fetchone()[0] == 1
    assert elapsed < 1.0, elapsed


def test_codes_and_their_aal2_stay_with_their_role(admin):
    """A login role that is a member of two users' roles: alice's recovery code makes alice's
    session aal2, not bob's after SET ROLE, and bob cannot spend alice's codes."""
    suffix = uuid.uuid4().hex[:8]
    alice, bob, login = f"rc_alice_{suffix}", f"rc_bob_{suffix}", f"rc_login_{suffix}"
    for r in (alice, bob):
        admin.execute(f"CREATE ROLE {r}")
    admin.execute(f"CREATE ROLE {login} LOGIN IN ROLE {alice}, {bob}")
    try:
        with connect(user=login) as c:
            c.execute(f"SET ROLE {alice}")
            factor, secret = c.execute("SELECT factor_id, secret FROM auth.enroll_my_totp('app')").fetchone()
            assert c.execute("SELECT auth.mfa_verify(%s)", (totp_now(secret),)).fetchone()[0]
            code = c.execute("SELECT auth.generate_my_recovery_codes(4)").fetchone()[0]
        with connect(user=login) as c:
            c.execute(f"SET ROLE {alice}")
            assert c.execute("SELECT auth.mfa_verify_recovery_code(%s)", (code,)).fetchone()[0] is True
            assert c.execute("SELECT auth.aal()::text").fetchone()[0] == "aal2"
            c.execute(f"SET ROLE {bob}")
            assert c.execute("SELECT auth.aal()::text").fetchone()[0] == "aal1"
            with pytest.raises(psycopg.errors.NoDataFound):
                c.execute("SELECT auth.mfa_verify_recovery_code(%s)", (code,))
    finally:
        for r in (login, alice, bob):
            admin.execute(f"DROP OWNED BY {r}")
            admin.execute(f"DROP ROLE {r}")


def test_unenrolling_the_last_factor_racing_a_recovery(admin):
    """A recovery in flight (uncommitted) while the user's last factor is removed: the removal
    waits for it, and the session it made aal2 is aal1 afterwards, with no codes left."""
    import time
    user, session, totp = user_with_aal2_session(admin)
    code = generate(admin, user, session)[0]
    recovered = str(uuid.uuid4())
    with connect() as a, connect() as b:
        a.execute("BEGIN")
        assert verify(a, user, code, recovered) is True
        done = []
        t = threading.Thread(target=lambda: done.append(b.execute("SELECT auth.unenroll_factor(%s)", (totp,))))
        t.start()
        for _ in range(100):
            waiting = admin.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = %s AND wait_event_type = 'Lock'",
                                    (b.info.backend_pid,)).fetchone()[0]
            if waiting:
                break
            time.sleep(0.05)
        assert waiting, "the unenroll waits for the recovery in flight"
        a.execute("COMMIT")
        t.join(10)
        assert done
    assert admin.execute("SELECT auth.session_aal(%s, %s)::text", (recovered, user)).fetchone()[0] == "aal1"
    assert admin.execute("SELECT count(*) FROM auth.mfa_recovery_code_sets WHERE user_id = %s", (user,)).fetchone()[0] == 0
    assert admin.execute("SELECT count(*) FROM auth.mfa_factors WHERE user_id = %s", (user,)).fetchone()[0] == 0
    # The claim that recovery committed went with its factor (the unenroll saw it).
    assert admin.execute("SELECT count(*) FROM auth.mfa_amr_claims WHERE session_id = %s", (recovered,)).fetchone()[0] == 0


def test_claim_link_is_written_once(admin):
    """Every kind links a claim to its factor with NOT EXISTS, never ON CONFLICT: the
    verification holds its factor's row, so no other one can be adding the same link. Two
    successes of one session, then eight at once on one new session (each its own code): one
    claim and one link each, its updated_at moved forward, and no unique violation."""
    user, session, _ = user_with_aal2_session(admin)
    codes = generate(admin, user, session, 12)
    links = """SELECT (SELECT count(*) FROM auth.mfa_amr_claims
                        WHERE session_id = %(s)s AND authentication_method = 'mfa/recovery_code'),
                      (SELECT count(*) FROM auth.mfa_amr_claim_factors
                        WHERE session_id = %(s)s AND authentication_method = 'mfa/recovery_code'),
                      (SELECT updated_at FROM auth.mfa_amr_claims
                        WHERE session_id = %(s)s AND authentication_method = 'mfa/recovery_code')"""
    one = str(uuid.uuid4())
    assert verify(admin, user, codes[0], one) is True
    first = admin.execute(links, {"s": one}).fetchone()
    assert verify(admin, user, codes[1], one) is True
    second = admin.execute(links, {"s": one}).fetchone()
    assert first[:2] == (1, 1) and second[:2] == (1, 1), (first, second)
    assert second[2] > first[2]

    many, results, barrier = str(uuid.uuid4()), [], threading.Barrier(8)

    def attempt(code):
        with connect() as c:
            barrier.wait()
            try:
                results.append(verify(c, user, code, many))
            except psycopg.Error as e:  # a unique violation would land here
                results.append(repr(e))

    threads = [threading.Thread(target=attempt, args=(code,)) for code in codes[2:10]]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [True] * 8, results
    assert admin.execute(links, {"s": many}).fetchone()[:2] == (1, 1)
