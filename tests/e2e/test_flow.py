"""The MFA flow end to end over real connections, as a non-superuser role granted
EXECUTE on the service functions, with codes from oathtool (an independent TOTP)."""
import subprocess
import threading
import time
import uuid

import psycopg
import pytest

from conftest import CONFIG, connect


def oathtool(secret, at=None, digits=6):
    args = ["oathtool", "--totp", "-b", "-d", str(digits)]
    if at is not None:
        args += ["-N", f"@{int(at)}"]
    return subprocess.run(args + [secret], check=True, capture_output=True, text=True).stdout.strip()


def fresh_code(secret):
    """oathtool's code for the current step: with the default window of one step either
    side it stays acceptable for at least 30 seconds."""
    return oathtool(secret)


def enroll(c, user=None):
    user = user or uuid.uuid4()
    fid, secret, uri, qr = c.execute("SELECT * FROM auth.enroll_totp(%s, 'app', 'ACME', 'alice')", (user,)).fetchone()
    return user, fid, secret


def challenge(c, fid, ip="10.1.2.3"):
    return c.execute("SELECT challenge_id FROM auth.create_challenge(%s, %s)", (fid, ip)).fetchone()[0]


def verify(c, cid, code, ip=None, session=None):
    return c.execute("SELECT auth.verify_challenge(%s, %s, %s, %s)", (cid, code, ip, session)).fetchone()[0]


def test_enroll_challenge_verify_amr_aal2(service_role):
    with connect(user=service_role) as c:
        user, fid, secret = enroll(c)
        session = uuid.uuid4()
        cid = challenge(c, fid)
        assert c.execute("SELECT auth.session_aal(%s)", (session,)).fetchone()[0] == "aal1"
        assert verify(c, cid, fresh_code(secret), "10.1.2.3", session) is True
        assert c.execute("SELECT auth.session_aal(%s)", (session,)).fetchone()[0] == "aal2"
        amr = c.execute("SELECT auth.session_amr(%s)", (session,)).fetchone()[0]
        assert [m["method"] for m in amr] == ["totp"] and abs(amr[0]["timestamp"] - time.time()) < 5
        claim = c.execute("SELECT auth.record_amr(%s, 'password')", (session,)).fetchone()[0]
        amr = c.execute("SELECT auth.session_amr(%s)", (session,)).fetchone()[0]
        assert [m["method"] for m in amr] == ["password", "totp"]  # most recent first
        # Time-ordered ids (UUIDv7): inserts append to the primary keys' right edge.
        assert cid.version == 7 and claim.version == 7
        later = challenge(c, fid)
        assert later.version == 7 and later > cid


def test_replayed_code_is_refused_on_a_new_challenge(service_role):
    with connect(user=service_role) as c:
        _, fid, secret = enroll(c)
        code = fresh_code(secret)
        assert verify(c, challenge(c, fid), code) is True
        assert verify(c, challenge(c, fid), code) is False  # RFC 6238 §5.2
        # An earlier step inside the window is a replay too.
        earlier = oathtool(secret, time.time() - 30)
        assert verify(c, challenge(c, fid), earlier) is False


def test_lockout_refuses_right_codes_then_lifts(service_role):
    with connect() as admin:
        admin.execute(f"ALTER ROLE {service_role} SET mfa_auth.lockout_duration = '2s'")
    with connect(user=service_role) as c:
        assert c.execute("SHOW mfa_auth.lockout_duration").fetchone()[0] == "2s"
        _, fid, secret = enroll(c)
        cid = challenge(c, fid)
        for _ in range(5):
            assert verify(c, cid, "000000") is False
        with pytest.raises(psycopg.errors.ConfigurationLimitExceeded, match="locked"):
            verify(c, cid, fresh_code(secret))
        with pytest.raises(psycopg.errors.ConfigurationLimitExceeded):
            verify(c, cid, "000000")
        time.sleep(2.2)
        assert verify(c, cid, fresh_code(secret)) is True
        with connect() as admin:
            assert admin.execute("SELECT failed_attempts, locked_until FROM auth.mfa_factors WHERE id = %s",
                                 (fid,)).fetchone() == (0, None)


def test_wrong_code_is_counted_even_though_it_does_not_raise(service_role):
    with connect(user=service_role) as c, connect() as admin:
        _, fid, _ = enroll(c)
        cid = challenge(c, fid)
        c.execute("BEGIN")
        assert verify(c, cid, "123456") is False
        c.execute("COMMIT")
        assert admin.execute("SELECT failed_attempts FROM auth.mfa_factors WHERE id = %s", (fid,)).fetchone()[0] == 1


def test_expired_challenge(service_role):
    with connect(user=service_role) as c, connect() as admin:
        _, fid, secret = enroll(c)
        cid = challenge(c, fid)
        # Move the challenge's clock back past mfa_auth.challenge_expiry (300 s) instead of sleeping.
        admin.execute("UPDATE auth.mfa_challenges SET created_at = created_at - interval '301 seconds' WHERE id = %s", (cid,))
        with pytest.raises(psycopg.errors.InvalidAuthorizationSpecification, match="expired"):
            verify(c, cid, fresh_code(secret))
        with pytest.raises(psycopg.errors.NoDataFound, match="no open MFA challenge"):
            c.execute("SELECT auth.verify_factor(%s, %s)", (fid, fresh_code(secret)))


def test_ip_mismatch_and_unknown_and_verified(service_role):
    with connect(user=service_role) as c:
        _, fid, secret = enroll(c)
        cid = challenge(c, fid, "10.1.2.3")
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="different IP"):
            verify(c, cid, fresh_code(secret), "10.9.9.9")
        with pytest.raises(psycopg.errors.NoDataFound, match="challenge not found"):
            verify(c, uuid.uuid4(), "123456")
        assert verify(c, cid, fresh_code(secret), "10.1.2.3") is True
        with pytest.raises(psycopg.errors.ObjectNotInPrerequisiteState, match="already verified"):
            verify(c, cid, "123456")


def test_verify_factor_uses_the_newest_open_challenge(service_role):
    with connect(user=service_role) as c, connect() as admin:
        _, fid, secret = enroll(c)
        old = challenge(c, fid)
        new = challenge(c, fid)
        assert c.execute("SELECT auth.verify_factor(%s, %s, NULL, %s)", (fid, fresh_code(secret), uuid.uuid4())).fetchone()[0]
        rows = dict(admin.execute("SELECT id, verified_at IS NOT NULL FROM auth.mfa_challenges WHERE factor_id = %s", (fid,)).fetchall())
        assert rows == {old: False, new: True}


def test_phone_code_is_hashed_and_resend_is_limited(service_role):
    with connect(user=service_role) as c, connect() as admin:
        user = uuid.uuid4()
        fid = c.execute("SELECT auth.enroll_phone(%s, '+14155552671')", (user,)).fetchone()[0]
        cid, expires, code = c.execute("SELECT challenge_id, expires_at, code FROM auth.create_challenge(%s, '10.0.0.1')", (fid,)).fetchone()  # noqa: E501
        assert len(code) == 6 and code.isdigit()
        stored = admin.execute("SELECT otp_code FROM auth.mfa_challenges WHERE id = %s", (cid,)).fetchone()[0]
        # Keyed where the cluster has a master key (k1, scripts/lib.sh), else the unkeyed v1 hash.
        assert code not in stored and stored.startswith("v2$k1$" if CONFIG in ("keyfile", "inline") else "v1$")
        with pytest.raises(psycopg.errors.ObjectInUse, match="less than 60 seconds"):
            c.execute("SELECT * FROM auth.create_challenge(%s, '10.0.0.1')", (fid,))
        wrong = f"{(int(code) + 1) % 1_000_000:06d}"
        assert verify(c, cid, wrong) is False
        session = uuid.uuid4()
        assert verify(c, cid, code, None, session) is True
        assert c.execute("SELECT auth.session_amr(%s)->0->>'method'", (session,)).fetchone()[0] == "mfa/phone"
        with pytest.raises(psycopg.errors.InvalidParameterValue, match="E.164"):
            c.execute("SELECT auth.enroll_phone(%s, '555-1234')", (user,))


def test_unenroll_drops_the_claims_it_granted(service_role):
    with connect(user=service_role) as c:
        _, fid, secret = enroll(c)
        session = uuid.uuid4()
        assert verify(c, challenge(c, fid), fresh_code(secret), None, session)
        c.execute("SELECT auth.record_amr(%s, 'password')", (session,))
        c.execute("SELECT auth.unenroll_factor(%s)", (fid,))
        assert c.execute("SELECT auth.session_aal(%s)", (session,)).fetchone()[0] == "aal1"
        assert [m["method"] for m in c.execute("SELECT auth.session_amr(%s)", (session,)).fetchone()[0]] == ["password"]


def test_factor_limits(service_role):
    with connect(user=service_role) as c:
        user = uuid.uuid4()
        c.execute("SELECT * FROM auth.enroll_totp(%s, 'main')", (user,))
        with pytest.raises(psycopg.errors.UniqueViolation, match="friendly_name"):
            c.execute("SELECT * FROM auth.enroll_totp(%s, 'main')", (user,))
        for i in range(9):
            c.execute("SELECT * FROM auth.enroll_totp(%s, %s)", (user, f"f{i}"))
        with pytest.raises(psycopg.errors.ConfigurationLimitExceeded, match="at most 10"):
            c.execute("SELECT * FROM auth.enroll_totp(%s)", (user,))


def run_at_once(n, fn):
    """Runs fn(i) on n connections released by one barrier; returns results or exceptions."""
    conns = [connect(user=fn.role) for _ in range(n)]
    barrier = threading.Barrier(n)
    results = [None] * n

    def worker(i):
        barrier.wait()
        try:
            results[i] = fn(conns[i], i)
        except Exception as e:  # noqa: BLE001 - collected and asserted on
            results[i] = e

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for c in conns:
        c.close()
    return results


def test_32_connections_verify_one_challenge_exactly_one_wins(service_role):
    with connect(user=service_role) as c:
        _, fid, secret = enroll(c)
        cid = challenge(c, fid)
        code = fresh_code(secret)

    def attempt(conn, i):
        return verify(conn, cid, code)
    attempt.role = service_role
    results = run_at_once(32, attempt)
    wins = [r for r in results if r is True]
    others = [type(r).__name__ for r in results if r is not True]
    print(f"\n32 connections, one challenge, right code: {len(wins)} true, others: "
          f"{ {k: others.count(k) for k in set(others)} }")
    assert len(wins) == 1
    assert all(isinstance(r, psycopg.errors.ObjectNotInPrerequisiteState) for r in results if r is not True)


def test_16_challenges_of_one_factor_same_code_exactly_one_wins(service_role):
    with connect(user=service_role) as c:
        _, fid, secret = enroll(c)
        cids = [challenge(c, fid) for _ in range(16)]
        code = fresh_code(secret)

    def attempt(conn, i):
        return verify(conn, cids[i], code)
    attempt.role = service_role
    results = run_at_once(16, attempt)
    wins = [r for r in results if r is True]
    others = [r if isinstance(r, bool) else type(r).__name__ for r in results if r is not True]
    print(f"\n16 challenges of one factor, same code: {len(wins)} true, others: "
          f"{ {str(k): others.count(k) for k in set(others)} }")
    assert len(wins) == 1
    # The rest see a replayed step (false) until the factor locks (53400).
    assert all(r is False or isinstance(r, psycopg.errors.ConfigurationLimitExceeded) for r in results if r is not True)
