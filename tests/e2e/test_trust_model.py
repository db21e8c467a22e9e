"""The trust model, tried as an attacker would: aal2 only from a factor the user is entitled
to, in the session that verified it. Each `test_attack_*` is one attack exactly as it worked
against 0.1.0 (a62b950), asserting what it gets now; the legitimate paths stand beside them.
Codes come from pyotp, an independent TOTP implementation."""
import json
import os
import threading
import time
import uuid

import psycopg
import pytest

from conftest import DB, ThrowawayCluster, connect, wrong_codes
from conftest import totp_now as code


def aal(conn):
    return conn.execute("SELECT auth.aal()::text").fetchone()[0]


def rows(conn, table):
    return conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]


# --- 1. a self-granted second factor ---------------------------------------------------------

def test_attack_1_password_only_session_cannot_add_or_remove_factors(plain_role, secured_table):
    """An aal1 session of a user who has a verified TOTP factor enrolls another factor,
    verifies it with the secret it was just given, and is aal2; or removes the real one."""
    with connect(user=plain_role) as owner:
        real, secret, _, _ = owner.execute("SELECT * FROM auth.enroll_my_totp('phone')").fetchone()
        assert owner.execute("SELECT auth.mfa_verify(%s)", (code(secret),)).fetchone()[0] is True
        assert aal(owner) == "aal2"  # the first factor raises its own session
    with connect(user=plain_role) as attacker:  # the password only: a new session, aal1
        assert aal(attacker) == "aal1"
        with pytest.raises(psycopg.errors.InsufficientPrivilege) as e:
            attacker.execute("SELECT * FROM auth.enroll_my_totp('x')")
        assert "aal2 session is required to enroll another factor" in str(e.value)
        assert "verify an existing factor first" in str(e.value)
        assert e.value.diag.message_hint and "Verify it in this session first" in e.value.diag.message_hint
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="remove a verified factor"):
            attacker.execute("SELECT auth.unenroll_my_factor(%s)", (real,))
        assert aal(attacker) == "aal1" and rows(attacker, secured_table) == 0
    with connect() as admin:
        factors = admin.execute("SELECT id, status::text FROM auth.mfa_factors WHERE user_id = auth.role_user_id(%s)",
                                (plain_role,)).fetchall()
    assert factors == [(real, "verified")]


def test_attack_1_an_unverified_factor_of_the_user_needs_aal2_to_verify(plain_role, service_role):
    """The same through a factor the attacker got enrolled some other way (here by the
    service): verifying it from an aal1 session, by self-service or by the service path
    with no session or an aal1 one, is refused; no code is evaluated, no claim recorded."""
    user, aal2_session = uuid.uuid4(), uuid.uuid4()
    with connect(user=service_role) as app:
        first, s1, _, _ = app.execute("SELECT * FROM auth.enroll_totp(%s, 'first')", (user,)).fetchone()
        cid = app.execute("SELECT challenge_id FROM auth.create_challenge(%s, '10.0.0.1')", (first,)).fetchone()[0]
    # Nothing verified yet: the first factor may be verified by any session.
    with connect(user=service_role) as app:
        assert app.execute("SELECT auth.verify_challenge(%s, %s, NULL, %s)", (cid, code(s1), aal2_session)).fetchone()[0]
        assert app.execute("SELECT auth.session_aal(%s, %s)::text", (aal2_session, user)).fetchone()[0] == "aal2"
        second, s2, _, _ = app.execute("SELECT * FROM auth.enroll_totp(%s, 'second')", (user,)).fetchone()
        for session in (None, uuid.uuid4()):   # no session; an aal1 one
            cid2 = app.execute("SELECT challenge_id FROM auth.create_challenge(%s, '10.0.0.1')", (second,)).fetchone()[0]
            with pytest.raises(psycopg.errors.InsufficientPrivilege, match="verify another factor"):
                app.execute("SELECT auth.verify_challenge(%s, %s, NULL, %s)", (cid2, code(s2), session))
            with pytest.raises(psycopg.errors.InsufficientPrivilege, match="verify another factor"):
                app.execute("SELECT auth.verify_factor(%s, %s, NULL, %s)", (second, code(s2), session))
        # Another user's aal2 session does not count for this user.
        other_user, other_session = uuid.uuid4(), uuid.uuid4()
        of, os_, _, _ = app.execute("SELECT * FROM auth.enroll_totp(%s)", (other_user,)).fetchone()
        app.execute("SELECT auth.create_challenge(%s, '10.0.0.1')", (of,))
        assert app.execute("SELECT auth.verify_factor(%s, %s, NULL, %s)", (of, code(os_), other_session)).fetchone()[0]
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            app.execute("SELECT auth.verify_factor(%s, %s, NULL, %s)", (second, code(s2), other_session))
    with connect() as admin:
        state = admin.execute("""SELECT status::text, failed_attempts,
                                        (SELECT count(*) FROM auth.mfa_amr_claim_factors WHERE factor_id = f.id)
                                   FROM auth.mfa_factors f WHERE id = %s""", (second,)).fetchone()
    assert state == ("unverified", 0, 0)
    # The legitimate path: the session that is aal2 for this user verifies the second factor.
    with connect(user=service_role) as app:
        assert app.execute("SELECT auth.verify_factor(%s, %s, NULL, %s)", (second, code(s2), aal2_session)).fetchone()[0]
        # A new session verifies with either factor (one step ahead: the steps were used).
        for factor, secret in ((first, s1), (second, s2)):
            s = uuid.uuid4()
            app.execute("SELECT auth.create_challenge(%s, '10.0.0.1')", (factor,))
            assert app.execute("SELECT auth.verify_factor(%s, %s, NULL, %s)", (factor, code(secret, 1), s)).fetchone()[0]
            assert app.execute("SELECT auth.session_aal(%s, %s)::text", (s, user)).fetchone()[0] == "aal2"


def test_legitimate_second_factor_from_an_aal2_session(plain_role, secured_table):
    with connect(user=plain_role) as me:
        f1, s1, _, _ = me.execute("SELECT * FROM auth.enroll_my_totp('phone')").fetchone()
        assert me.execute("SELECT auth.mfa_verify(%s)", (code(s1),)).fetchone()[0]
        f2, s2, _, _ = me.execute("SELECT * FROM auth.enroll_my_totp('laptop')").fetchone()
        assert me.execute("SELECT auth.mfa_verify(%s, %s)", (code(s2), f2)).fetchone()[0]
        statuses = me.execute("SELECT status::text FROM auth.my_factors() ORDER BY created_at").fetchall()
        assert statuses == [("verified",), ("verified",)]
    # New sessions verify with either factor.
    for factor, secret in ((f1, s1), (f2, s2)):
        with connect(user=plain_role) as me:
            assert aal(me) == "aal1"
            assert me.execute("SELECT auth.mfa_verify(%s, %s)", (code(secret, 1), factor)).fetchone()[0]
            assert aal(me) == "aal2" and rows(me, secured_table) == 3
            if factor == f2:
                # An aal2 session may remove a verified factor.
                me.execute("SELECT auth.unenroll_my_factor(%s)", (f1,))
                assert [r[0] for r in me.execute("SELECT factor_id FROM auth.my_factors()").fetchall()] == [f2]


# --- 2. aal2 across roles ----------------------------------------------------------------------

@pytest.fixture
def two_users(database):
    """NOLOGIN roles alice and bob, and a login role that is a member of both."""
    tag = uuid.uuid4().hex[:8]
    alice, bob, login = f"e2e_alice_{tag}", f"e2e_bob_{tag}", f"e2e_login_{tag}"
    with connect() as admin:
        admin.execute(f"CREATE ROLE {alice}; CREATE ROLE {bob}; CREATE ROLE {login} LOGIN; GRANT {alice}, {bob} TO {login}")
    yield alice, bob, login
    with connect() as admin:
        admin.execute(f"DELETE FROM auth.mfa_factors WHERE user_id IN (auth.role_user_id('{alice}'), auth.role_user_id('{bob}'))")
        admin.execute(f"DROP ROLE {login}; DROP ROLE {alice}; DROP ROLE {bob}")


def test_attack_2_set_role_does_not_carry_aal2(two_users, secured_table):
    alice, bob, login = two_users
    with connect(user=login) as c:
        c.execute(f"SET ROLE {alice}")
        _, secret, _, _ = c.execute("SELECT * FROM auth.enroll_my_totp()").fetchone()
        assert c.execute("SELECT auth.mfa_verify(%s)", (code(secret),)).fetchone()[0]
        alice_session = c.execute("SELECT auth.session_id()").fetchone()[0]
        assert aal(c) == "aal2" and rows(c, secured_table) == 3
        c.execute("RESET ROLE")
        c.execute(f"SET ROLE {bob}")
        # bob has no factor at all: another user, another session, aal1.
        assert c.execute("SELECT auth.uid() = auth.role_user_id(%s)", (bob,)).fetchone()[0]
        assert c.execute("SELECT auth.session_id()").fetchone()[0] != alice_session
        assert aal(c) == "aal1" and rows(c, secured_table) == 0
        assert c.execute("SELECT auth.amr()").fetchone()[0] == []
        assert c.execute("SELECT auth.mfa_verified_within('1 hour')").fetchone()[0] is False
        # PostGraphile-style: SET LOCAL ROLE per request, on one backend.
        c.execute("RESET ROLE")
        with c.transaction():
            c.execute(f"SET LOCAL ROLE {alice}")
            assert aal(c) == "aal2"
        with c.transaction():
            c.execute(f"SET LOCAL ROLE {bob}")
            assert aal(c) == "aal1" and rows(c, secured_table) == 0
        # Even handed alice's session id (as a gateway would), bob's claims do not exist.
        with connect() as admin:
            admin.execute(f"ALTER ROLE {login} SET mfa_auth.jwt_claims_roles = '{login}'")
    with connect(user=login) as gw:
        bob_uid = gw.execute("SELECT auth.role_user_id(%s)", (bob,)).fetchone()[0]
        gw.execute("SELECT set_config('request.jwt.claims', %s, false)",
                   (json.dumps({"sub": str(bob_uid), "session_id": str(alice_session)}),))
        assert gw.execute("SELECT auth.session_id()").fetchone()[0] == alice_session
        assert aal(gw) == "aal1" and rows(gw, secured_table) == 0


# --- 4. unenroll racing a verification -------------------------------------------------------

def waiting_for_a_lock(function):
    """How many backends wait on a lock in a statement calling `function` (polled up to 5 s)."""
    with connect() as admin:
        for _ in range(100):
            waiting = admin.execute("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                                    "AND query LIKE %s", (f"%{function}%",)).fetchone()[0]
            if waiting:
                return waiting
            time.sleep(0.05)
    return 0


def test_attack_4_unenroll_waits_for_a_verification_in_flight(service_role):
    user, session = uuid.uuid4(), uuid.uuid4()
    with connect(user=service_role) as app:
        factor, secret, _, _ = app.execute("SELECT * FROM auth.enroll_totp(%s)", (user,)).fetchone()
        cid = app.execute("SELECT challenge_id FROM auth.create_challenge(%s, '10.0.0.1')", (factor,)).fetchone()[0]
    c1 = psycopg.connect(host=os.environ.get("PGHOST", "127.0.0.1"), port=os.environ.get("PGPORT", "5432"),
                         user=service_role, dbname=DB, autocommit=False)
    try:
        assert c1.execute("SELECT auth.verify_challenge(%s, %s, NULL, %s)", (cid, code(secret), session)).fetchone()[0]
        done = {}

        def unenroll():
            with connect(user=service_role) as c2:
                done["pid"] = c2.info.backend_pid
                c2.execute("SELECT auth.unenroll_factor(%s)", (factor,))
                done["ok"] = True

        t = threading.Thread(target=unenroll)
        t.start()
        # connection 2 is waiting for connection 1's row lock
        assert waiting_for_a_lock("unenroll_factor") == 1 and "ok" not in done
        c1.commit()
        t.join(10)
        assert done.get("ok")
    finally:
        c1.close()
    with connect() as admin:
        left = admin.execute("""SELECT (SELECT count(*) FROM auth.mfa_factors WHERE id = %(f)s),
                                       (SELECT count(*) FROM auth.mfa_amr_claims WHERE session_id = %(s)s),
                                       (SELECT count(*) FROM auth.mfa_amr_claim_factors WHERE session_id = %(s)s),
                                       auth.session_aal(%(s)s)::text""", {"f": factor, "s": session}).fetchone()
    assert left == (0, 0, 0, "aal1")


@pytest.mark.parametrize("isolation", ["read committed", "repeatable read"])
def test_attack_4b_two_verifications_of_one_factor_in_one_session_race(service_role, isolation):
    """The factor-claim link is inserted when missing (no ON CONFLICT): two verifications of the
    same factor for the same session, at once, must leave one claim and one link, and the second
    must wait for the first (the factor's row lock), then succeed without a duplicate key error
    (READ COMMITTED) or fail as a serialization failure, 40001 (REPEATABLE READ)."""
    user, session = uuid.uuid4(), uuid.uuid4()
    with connect(user=service_role) as app:
        factor, secret, _, _ = app.execute("SELECT * FROM auth.enroll_totp(%s)", (user,)).fetchone()
        a, b = (app.execute("SELECT challenge_id FROM auth.create_challenge(%s, '10.0.0.1')", (factor,)).fetchone()[0]
                for _ in range(2))
    first, second = code(secret), code(secret, steps_ahead=1)  # two steps: both codes are right
    dsn = dict(host=os.environ.get("PGHOST", "127.0.0.1"), port=os.environ.get("PGPORT", "5432"),
               user=service_role, dbname=DB)
    c1 = psycopg.connect(**dsn, autocommit=False)
    result = {}
    try:
        assert c1.execute("SELECT auth.verify_challenge(%s, %s, NULL, %s)", (a, first, session)).fetchone()[0]

        def verify_second():
            with psycopg.connect(**dsn, autocommit=False) as c2:
                c2.execute(f"SET TRANSACTION ISOLATION LEVEL {isolation}")
                c2.execute("SELECT 1")  # the snapshot is taken before the first commits
                try:
                    result["ok"] = c2.execute("SELECT auth.verify_challenge(%s, %s, NULL, %s)",
                                              (b, second, session)).fetchone()[0]
                    c2.commit()
                except psycopg.Error as e:
                    result["sqlstate"] = e.sqlstate

        t = threading.Thread(target=verify_second)
        t.start()
        assert waiting_for_a_lock("verify_challenge") == 1 and not result
        c1.commit()
        t.join(10)
    finally:
        c1.close()
    if isolation == "read committed":
        assert result == {"ok": True}
    else:
        assert result == {"sqlstate": "40001"}
    with connect() as admin:
        left = admin.execute("""SELECT (SELECT count(*) FROM auth.mfa_amr_claims WHERE session_id = %(s)s),
                                       (SELECT count(*) FROM auth.mfa_amr_claim_factors WHERE session_id = %(s)s),
                                       auth.session_aal(%(s)s)::text""", {"s": session}).fetchone()
    assert left == (1, 1, "aal2")


# --- the per-statement cache -------------------------------------------------------------------

def test_a_do_block_sees_each_identity_it_sets(plain_role):
    with connect() as admin:
        admin.execute(f"ALTER ROLE {plain_role} SET mfa_auth.jwt_claims_roles = '{plain_role}'")
    u1, s1, u2 = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    with connect(user=plain_role) as gw:
        gw.execute("SELECT set_config('request.jwt.claims', %s, false)", (json.dumps({"sub": str(u1), "session_id": str(s1)}),))
        _, secret, _, _ = gw.execute("SELECT * FROM auth.enroll_my_totp()").fetchone()
        assert gw.execute("SELECT auth.mfa_verify(%s)", (code(secret),)).fetchone()[0]
        c1 = json.dumps({"sub": str(u1), "session_id": str(s1)})
        c2 = json.dumps({"sub": str(u2), "session_id": str(s1)})
        # One statement (a DO block keeps the statement start time): switch identity twice.
        gw.execute(f"""DO $$
            DECLARE a uuid; b uuid; aal_a text; aal_b text;
            BEGIN
              PERFORM set_config('request.jwt.claims', '{c1}', true);
              a := auth.uid(); aal_a := auth.aal();
              PERFORM set_config('request.jwt.claims', '{c2}', true);
              b := auth.uid(); aal_b := auth.aal();
              IF a <> '{u1}' OR b <> '{u2}' OR aal_a <> 'aal2' OR aal_b <> 'aal1' THEN
                RAISE EXCEPTION 'stale identity: % % % %', a, b, aal_a, aal_b;
              END IF;
            END $$""")


def test_a_rolled_back_savepoint_does_not_leave_aal2_cached(plain_role):
    with connect(user=plain_role) as me:
        _, secret, _, _ = me.execute("SELECT * FROM auth.enroll_my_totp()").fetchone()
        me.execute(f"""DO $$
            DECLARE inside text; after text;
            BEGIN
              BEGIN
                IF NOT auth.mfa_verify('{code(secret)}') THEN RAISE EXCEPTION 'code refused'; END IF;
                inside := auth.aal();
                RAISE SQLSTATE 'P0099';
              EXCEPTION WHEN SQLSTATE 'P0099' THEN NULL;
              END;
              after := auth.aal();
              IF inside <> 'aal2' OR after <> 'aal1' THEN
                RAISE EXCEPTION 'aal inside % after %', inside, after;
              END IF;
            END $$""")
        # And for the next statements too: the claim was rolled back with the savepoint.
        assert aal(me) == "aal1"
        assert me.execute("SELECT status::text FROM auth.my_factors()").fetchone()[0] == "unverified"


# --- 5. flushing the attempt table -------------------------------------------------------------

# One round: a throw-away user of the gateway (a fresh sub, so a first factor, needing no
# aal2) enrolls a factor and fails one code. `rolled_back`: each round runs in a
# subtransaction that is rolled back (the factor vanishes, only the shared table saw the
# failure); else a COMMIT every 500 rounds (the factors stay). Prints how many verifications
# were refused with 53400. The code tried is wrong for certain: '000000', or the next number
# when that is the factor's code within 2 steps of the clock (about 5 times in a million).
FLOOD = """DO $$
DECLARE n int; refused int := 0; secret text; wrong int;
BEGIN
  FOR n IN 1..%(rounds)s LOOP
    BEGIN
      PERFORM set_config('request.jwt.claims',
                         json_build_object('sub', gen_random_uuid(), 'session_id', gen_random_uuid())::text, true);
      SELECT e.secret INTO secret FROM auth.enroll_my_totp() e;
      wrong := 0;
      WHILE auth.totp_verify(secret, lpad(wrong::text, 6, '0'), clock_timestamp(), 2) IS NOT NULL LOOP
        wrong := wrong + 1;
      END LOOP;
      BEGIN
        IF auth.mfa_verify(lpad(wrong::text, 6, '0')) THEN RAISE 'a wrong code was accepted'; END IF;
      EXCEPTION WHEN configuration_limit_exceeded THEN refused := refused + 1;
      END;
      IF %(rolled_back)s THEN RAISE SQLSTATE 'P0099'; END IF;
    EXCEPTION WHEN SQLSTATE 'P0099' THEN NULL;
    END;
    IF NOT %(rolled_back)s AND n %% 500 = 0 THEN COMMIT; END IF;
  END LOOP;
  RAISE NOTICE '%%', refused;
END $$"""


@pytest.fixture(scope="module")
def flood_cluster():
    """Its own preloaded cluster: the flood fills the shared attempt table for a lockout
    duration, which must not starve the other tests' verifications."""
    cluster = ThrowawayCluster("mfa_auth-flood.", "shared_preload_libraries=mfa_auth",
                               "mfa_auth.lockout_duration=3600", "mfa_auth.challenge_expiry=3600")
    with cluster.connect() as c:
        c.execute("CREATE EXTENSION mfa_auth")
        c.execute("CREATE ROLE gateway LOGIN")
        c.execute("ALTER ROLE gateway SET mfa_auth.jwt_claims_roles = 'gateway'")
    yield cluster
    cluster.stop()


def test_attack_5_a_flood_of_throwaway_failures_leaves_the_victim_locked(flood_cluster):
    rounds = 10_000  # per phase: each phase alone is more failures than the table has slots
    with flood_cluster.connect() as admin:
        victim, secret, _, _ = admin.execute("SELECT * FROM auth.enroll_totp(gen_random_uuid())").fetchone()
        challenge = admin.execute("SELECT challenge_id FROM auth.create_challenge(%s, '::1')", (victim,)).fetchone()[0]
    # The victim's factor locked by 8 rolled-back wrong codes: only the shared table knows.
    outcomes = []
    with flood_cluster.connect(autocommit=False) as attacker:
        for guess in wrong_codes(secret, 8):
            try:
                outcomes.append(attacker.execute("SELECT auth.verify_challenge(%s, %s)", (challenge, guess)).fetchone()[0])
            except psycopg.errors.ConfigurationLimitExceeded:
                outcomes.append("locked")
            attacker.rollback()
    assert outcomes == [False] * 5 + ["locked"] * 3
    # The audit writer writes the count and the lock into the row too (a crash or a failover
    # keeps them); cleared here by hand once it has, so that only the shared table knows.
    with flood_cluster.connect() as admin:
        t0 = time.monotonic()
        while admin.execute("SELECT failed_attempts FROM auth.mfa_factors WHERE id = %s", (victim,)).fetchone()[0] != 5:
            assert time.monotonic() - t0 < 10, "the writer did not write the victim's count"
            time.sleep(0.05)
        admin.execute("UPDATE auth.mfa_factors SET failed_attempts = 0, locked_until = NULL WHERE id = %s", (victim,))
    refused = []
    with flood_cluster.connect(user="gateway") as gw:
        gw.add_notice_handler(lambda d: d.severity_nonlocalized == "NOTICE" and refused.append(int(d.message_primary)))
        t0 = time.monotonic()
        gw.execute(FLOOD % {"rounds": rounds, "rolled_back": "true"})
        gw.execute(FLOOD % {"rounds": rounds, "rolled_back": "false"})
        elapsed = time.monotonic() - t0
    with flood_cluster.connect() as admin:
        row = admin.execute("SELECT failed_attempts, locked_until FROM auth.mfa_factors WHERE id = %s", (victim,)).fetchone()
        tracking = admin.execute("SELECT capacity, tracked_factors, evictions, refusals FROM auth.attempt_tracking()").fetchone()
        committed = admin.execute("SELECT count(*) FROM auth.mfa_factors").fetchone()[0] - 1
        # The right code is still refused, and no new challenge can be made.
        with pytest.raises(psycopg.errors.ConfigurationLimitExceeded, match="locked"):
            admin.execute("SELECT auth.verify_challenge(%s, %s)", (challenge, code(secret)))
        with pytest.raises(psycopg.errors.ConfigurationLimitExceeded, match="locked"):
            admin.execute("SELECT auth.create_challenge(%s, '::1')", (victim,))
    print(f"\n  flood: {2 * rounds} rounds ({rounds} rolled back, {rounds} committed: {committed} factors) in "
          f"{elapsed:.1f} s; refused per phase {refused}; attempt table capacity/used/evictions/refusals {tracking}; "
          f"victim row failed_attempts={row[0]} locked_until={row[1]}: still locked")
    assert row == (0, None)  # as cleared above: the lock lives in the shared table alone
    assert committed == rounds
    capacity, used, evictions, refusals = tracking
    # Every slot taken (the victim's and 8 191 flooders'), nothing evicted, the rest refused.
    assert evictions == 0 and used == capacity and refusals == sum(refused) == 2 * rounds - (capacity - 1)
