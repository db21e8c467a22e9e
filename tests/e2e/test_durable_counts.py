"""Failed attempts that a caller rolled back reach the tables (auth.mfa_factors.failed_attempts
and locked_until, auth.mfa_recovery_code_sets.failed_verification_count and
verification_locked_until) through the audit writer, in its own transaction: a count or a lock
that lived only in shared memory was lost in a crash and on a failover (the standby never saw
it), which gave an attacker who rolls every guess back a fresh set of attempts.

The attacks, each written before the change: rolled-back guesses then a crash (an immediate
stop), with a lock, with a count short of the lock and on recovery codes; a transaction left
open on the factor's row (the writer must not wait for it, nor hold the trail up); an
administrator's unlock that comes before the writer has written the lock (the writer must not
lock the factor again); mfa_auth.audit = off (no row, the count all the same)."""
import time
import uuid

import psycopg
import pyotp
import pytest

from conftest import keyed_cluster, wrong_codes

LIMIT = 5  # mfa_auth.max_failed_attempts (default)


@pytest.fixture(scope="module")
def cluster():
    with keyed_cluster("mfa_auth-counts-", "max_prepared_transactions=4") as c:
        with c.connect() as admin:
            admin.execute("CREATE EXTENSION mfa_auth")
        yield c


def factor(c):
    fid, secret = c.execute("SELECT factor_id, secret FROM auth.enroll_totp(gen_random_uuid())").fetchone()
    c.execute("UPDATE auth.mfa_factors SET status = 'verified' WHERE id = %s", (fid,))
    return fid, secret


def attempt(c, statement, args, rollback=True):
    """One verification in a transaction rolled back (the attacker's best) or committed:
    True/False, or 'locked' (53400)."""
    try:
        with c.transaction(force_rollback=rollback):
            return c.execute(statement, args).fetchone()[0]
    except psycopg.errors.ConfigurationLimitExceeded:
        return "locked"


def guess(c, fid, code, rollback=True):
    try:
        cid = c.execute("SELECT challenge_id FROM auth.create_challenge(%s, '192.0.2.7')", (fid,)).fetchone()[0]
    except psycopg.errors.ConfigurationLimitExceeded:
        return "locked"  # a factor locked in its row refuses a new challenge too
    return attempt(c, "SELECT auth.verify_challenge(%s, %s)", (cid, code), rollback)


def row(c, fid):
    return c.execute("SELECT failed_attempts, locked_until IS NOT NULL, locked_until - now() FROM auth.mfa_factors "
                     "WHERE id = %s", (fid,)).fetchone()


def wait_until(read, want, timeout=10.0):
    """`read()` once it returns `want` (the writer runs every 100 ms), or what it returns after
    `timeout`; and the seconds it took."""
    t0 = time.time()
    while True:
        got = read()
        if got == want or time.time() - t0 > timeout:
            return got, time.time() - t0
        time.sleep(0.05)


def wait_row(c, fid, want, timeout=10.0):
    """The factor's (failed_attempts, locked), waited for until it is `want`."""
    return wait_until(lambda: row(c, fid)[:2], want, timeout)


def recovery_set(c):
    """A user with a verified TOTP factor, an aal2 session and 10 recovery codes."""
    user = str(uuid.uuid4())
    fid, secret = c.execute("SELECT factor_id, secret FROM auth.enroll_totp(%s)", (user,)).fetchone()
    session = str(uuid.uuid4())
    cid = c.execute("SELECT challenge_id FROM auth.create_challenge(%s, '192.0.2.7')", (fid,)).fetchone()[0]
    assert c.execute("SELECT auth.verify_challenge(%s, %s, NULL, %s)",
                     (cid, pyotp.TOTP(secret).at(time.time() - 30), session)).fetchone()[0]
    codes = [r[0] for r in c.execute("SELECT * FROM auth.generate_recovery_codes(%s, %s)", (user, session))]
    return user, codes


def recovery_guess(c, user, code, rollback=True):
    return attempt(c, "SELECT auth.verify_recovery_code(%s, %s)", (user, code), rollback)


def set_row(c, user):
    return c.execute("SELECT failed_verification_count, verification_locked_until IS NOT NULL "
                     "FROM auth.mfa_recovery_code_sets WHERE user_id = %s", (user,)).fetchone()


def test_rolled_back_failures_reach_the_table(cluster):
    with cluster.connect() as c:
        fid, secret = factor(c)
        wrong = iter(wrong_codes(secret, 20))
        assert [guess(c, fid, next(wrong)) for _ in range(3)] == [False] * 3
        three, t3 = wait_row(c, fid, (3, False))
        assert [guess(c, fid, next(wrong)) for _ in range(3)] == [False, False, "locked"]
        locked, t5 = wait_row(c, fid, (5, True))
        left = row(c, fid)[2]
        lockout = c.execute("SELECT setting::int FROM pg_settings WHERE name = 'mfa_auth.lockout_duration'").fetchone()[0]
        user, codes = recovery_set(c)
        set_after = [recovery_guess(c, user, "aaaa-bbbb-cccc-dddd") for _ in range(LIMIT)]
        in_set, _ = wait_until(lambda: set_row(c, user), (LIMIT, True))
    print(f"\n  3 rolled-back failures: row {three} after {t3:.2f} s; 5: row {locked} after {t5:.2f} s, "
          f"locked for {left} more (lockout {lockout} s); recovery codes, 5 rolled back: {set_after} -> set row {in_set}")
    assert three == (3, False)
    assert locked == (5, True)
    assert lockout - 5 < left.total_seconds() <= lockout
    assert set_after == [False] * LIMIT and in_set == (LIMIT, True)


def test_a_crash_keeps_what_rolled_back_guesses_counted(cluster):
    """Rolled-back guesses; an immediate stop (shared memory is gone, as on a failover's new
    primary); then the right code."""
    with cluster.connect() as c:
        victim, vsecret = factor(c)
        partly, psecret = factor(c)
        user, codes = recovery_set(c)
        assert [guess(c, victim, g) for g in wrong_codes(vsecret, LIMIT)] == [False] * LIMIT
        assert [guess(c, partly, g) for g in wrong_codes(psecret, 3)] == [False] * 3
        assert [recovery_guess(c, user, "aaaa-bbbb-cccc-dddd") for _ in range(LIMIT)] == [False] * LIMIT
        # The writer's transaction has committed once the set row shows the lock (the last one queued).
        wait_until(lambda: set_row(c, user), (LIMIT, True))
    done = cluster.pg_ctl("-m", "immediate", "-w", "restart")
    assert done.returncode == 0, done.stdout + done.stderr
    with cluster.connect() as c:
        right = guess(c, victim, pyotp.TOTP(vsecret).now(), rollback=False)
        more = [guess(c, partly, g) for g in wrong_codes(psecret, 4)]
        code = recovery_guess(c, user, codes[0], rollback=False)
    print(f"\n  after the crash: the locked victim's right code -> {right}; 3 failures before, 4 more guesses "
          f"-> {more}; the locked recovery set's right code -> {code}")
    assert right == "locked"
    assert more == [False, False, "locked", "locked"]
    assert code == "locked"


def test_an_open_transaction_on_the_row_holds_up_neither_the_trail_nor_the_count(cluster):
    """A guess whose transaction stays open keeps its factor's row locked (FOR UPDATE): the
    writer skips that row (no wait), writes the rest, and counts the guess once the
    transaction has rolled back."""
    with cluster.connect() as c, cluster.connect() as holder:
        fid, secret = factor(c)
        other, osecret = factor(c)
        wrong = wrong_codes(secret, 1)[0]
        cid = c.execute("SELECT challenge_id FROM auth.create_challenge(%s, '192.0.2.7')", (fid,)).fetchone()[0]
        holder.execute("BEGIN")
        assert holder.execute("SELECT auth.verify_challenge(%s, %s)", (cid, wrong)).fetchone()[0] is False
        # Another factor's failure meanwhile: its row and its count are written.
        t0 = time.time()
        assert guess(c, other, wrong_codes(osecret, 1)[0]) is False
        other_row, _ = wait_row(c, other, (1, False), timeout=5)
        trail = c.execute("SELECT count(*) FROM auth.mfa_audit_log WHERE factor_id = %s AND outcome = 'failure'",
                          (other,)).fetchone()[0]
        took = time.time() - t0
        held = c.execute("SELECT failed_attempts FROM auth.mfa_factors WHERE id = %s", (fid,)).fetchone()[0]
        holder.execute("ROLLBACK")
        after, t_after = wait_row(c, fid, (1, False), timeout=5)
    print(f"\n  with a transaction open on one factor's row: another factor's count {other_row} and {trail} trail "
          f"row in {took:.2f} s; the held factor {held} while open, {after} {t_after:.2f} s after its ROLLBACK")
    assert other_row == (1, False) and trail == 1 and took < 5
    assert held == 0
    assert after == (1, False)


def test_an_unlock_before_the_writer_wrote_the_lock_stays(cluster):
    """The writer is held up (a prepared transaction locks the trail) while rolled-back guesses
    lock a factor; an administrator unlocks it; then the writer writes: the factor stays
    unlocked (the unlock is newer than the lock), and the right code verifies."""
    with cluster.connect() as c:
        fid, secret = factor(c)
        c.execute("BEGIN")
        c.execute("LOCK TABLE auth.mfa_audit_log IN ACCESS EXCLUSIVE MODE")
        c.execute("PREPARE TRANSACTION 'hold_counts'")
        assert [guess(c, fid, g) for g in wrong_codes(secret, LIMIT)] == [False] * LIMIT
        c.execute("SELECT auth.unlock_factor(%s)", (fid,))
        time.sleep(0.3)
        while_held = row(c, fid)[:2]
        c.execute("ROLLBACK PREPARED 'hold_counts'")
        t0 = time.time()
        while c.execute("SELECT count(*) FROM auth.mfa_audit_log WHERE factor_id = %s AND event = 'factor_locked'",
                        (fid,)).fetchone()[0] == 0 and time.time() - t0 < 20:
            time.sleep(0.1)
        written = time.time() - t0
        after = row(c, fid)[:2]
        right = guess(c, fid, pyotp.TOTP(secret).now(), rollback=False)
    print(f"\n  locked by rolled-back guesses, unlocked while the writer was held: {while_held}; the lock's rows "
          f"written {written:.1f} s after the release; then the factor {after}, the right code -> {right}")
    assert while_held == (0, False)
    assert written < 20
    assert after == (0, False)
    assert right is True


def test_with_the_trail_off_the_count_still_reaches_the_table(cluster):
    name = "off_" + uuid.uuid4().hex[:8]
    with cluster.connect() as admin:
        admin.execute(f"CREATE DATABASE {name}")
        admin.execute(f"ALTER DATABASE {name} SET mfa_auth.audit = off")
    with cluster.connect(dbname=name) as c:
        c.execute("CREATE EXTENSION mfa_auth")
        fid, secret = factor(c)
        assert [guess(c, fid, g) for g in wrong_codes(secret, LIMIT)] == [False] * LIMIT
        got, took = wait_row(c, fid, (LIMIT, True))
        trail = c.execute("SELECT count(*) FROM auth.mfa_audit_log").fetchone()[0]
    print(f"\n  mfa_auth.audit = off: 5 rolled-back failures -> row {got} after {took:.2f} s, {trail} trail rows")
    assert got == (LIMIT, True) and trail == 0


def test_attempts_a_hook_refused_reach_the_table_too(cluster):
    """A verification the policy hook rejects (28000) or fails on (39000) raises, so the caller's
    transaction and its failure statement are gone; the attempt was counted (in shared memory)
    before the hook ran, and its count must reach the row as a wrong code's does."""
    name = "hook_" + uuid.uuid4().hex[:8]
    with cluster.connect() as admin:
        admin.execute(f"CREATE DATABASE {name}")
    with cluster.connect(dbname=name) as c:
        c.execute("CREATE EXTENSION mfa_auth")
        c.execute("CREATE SCHEMA hooks")
        c.execute("""CREATE FUNCTION hooks.reject(event jsonb) RETURNS jsonb LANGUAGE sql
                     AS $$ SELECT '{"decision": "reject", "message": "no"}'::jsonb $$""")
        c.execute("""CREATE FUNCTION hooks.fail(event jsonb) RETURNS jsonb LANGUAGE sql AS $$ SELECT NULL::jsonb $$""")
        fid, secret = factor(c)
        outcomes = []
        for hook in ("hooks.reject", "hooks.reject", "hooks.fail"):
            c.execute(f"SET mfa_auth.verification_hook = '{hook}'")
            cid = c.execute("SELECT challenge_id FROM auth.create_challenge(%s, '192.0.2.7')", (fid,)).fetchone()[0]
            try:
                c.execute("SELECT auth.verify_challenge(%s, %s)", (cid, pyotp.TOTP(secret).now()))
                outcomes.append("returned")
            except psycopg.Error as e:
                outcomes.append(e.sqlstate)
        c.execute("RESET mfa_auth.verification_hook")
        got, took = wait_row(c, fid, (3, False))
    print(f"\n  a hook's refusals {outcomes}, the right code each time: row {got} after {took:.2f} s")
    assert outcomes == ["28000", "28000", "39000"]
    assert got == (3, False)
