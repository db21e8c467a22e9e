"""The policy hooks and the re-verification window over real connections, in every
configuration (scripts/test.sh runs this file in each): a reject signs the user out of every
session, what a rollback keeps after a reject, failing closed (the trail and the server log),
and mfa_auth.reverify_window behind PgBouncer's transaction pooling (gateway mode, as
PostgREST) and in database-session mode. Codes come from pyotp.

Without the library preloaded (nopreload) the rejection's sign-out and its audit row are part
of the caller's transaction, which the error rolls back: the tests check that documented
difference instead (docs/security.md, "Policy hooks")."""
import json
import time
import uuid

import psycopg
import pytest
from softkey import SoftKey
from test_pooler import PgBouncer

from conftest import PRELOADED, connect, totp_now, wrong_codes

DB = "mfa_auth_hooks"
HOOKS = """
    CREATE SCHEMA hooks;
    CREATE TABLE hooks.answer (decision jsonb NOT NULL);
    INSERT INTO hooks.answer VALUES ('{"decision": "continue"}');
    CREATE FUNCTION hooks.verify(event jsonb) RETURNS jsonb LANGUAGE sql STABLE
        SET search_path = pg_catalog AS $$ SELECT decision FROM hooks.answer $$;
    CREATE FUNCTION hooks.enroll(event jsonb) RETURNS jsonb LANGUAGE sql STABLE
        SET search_path = pg_catalog AS $$ SELECT decision FROM hooks.answer $$;
    CREATE FUNCTION hooks.raises(event jsonb) RETURNS jsonb LANGUAGE plpgsql AS $$
        BEGIN RAISE EXCEPTION 'the policy service is down' USING ERRCODE = 'P0001'; END $$;
"""


@pytest.fixture(scope="module")
def db():
    with connect("postgres") as c:
        c.execute(f"DROP DATABASE IF EXISTS {DB} WITH (FORCE)")
        c.execute(f"CREATE DATABASE {DB}")
    with connect(DB) as c:
        c.execute("CREATE EXTENSION mfa_auth")
        c.execute(HOOKS)
        c.execute(f"ALTER DATABASE {DB} SET mfa_auth.verification_hook = 'hooks.verify'")
    yield DB
    with connect("postgres") as c:
        c.execute(f"DROP DATABASE IF EXISTS {DB} WITH (FORCE)")


def answer(decision):
    with connect(DB) as c:
        c.execute("UPDATE hooks.answer SET decision = %s::jsonb", (decision,))


def enrolled(c, user, session=None):
    """A verified TOTP factor of `user` (verified in `session`, or without one)."""
    fid, secret, _, _ = c.execute("SELECT * FROM auth.enroll_totp(%s)", (user,)).fetchone()
    ch = c.execute("SELECT challenge_id FROM auth.create_challenge(%s, '10.0.0.1')", (fid,)).fetchone()[0]
    assert c.execute("SELECT auth.verify_challenge(%s, %s, NULL, %s)", (ch, totp_now(secret), session)).fetchone()[0]
    return fid, secret


def verify(c, fid, code, session=None):
    ch = c.execute("SELECT challenge_id FROM auth.create_challenge(%s, '10.0.0.1')", (fid,)).fetchone()[0]
    return ch, c.execute("SELECT auth.verify_challenge(%s, %s, '10.0.0.1', %s)", (ch, code, session)).fetchone()[0]


def aal(c, session, user):
    return c.execute("SELECT auth.session_aal(%s, %s)::text", (session, user)).fetchone()[0]


def audit_count(c, factor, event, wait_for=None, timeout=10.0):
    """Rows of `event` for `factor`; waits (the writer is asynchronous) until `wait_for` are there."""
    deadline = time.time() + timeout
    while True:
        n = c.execute("SELECT count(*) FROM auth.mfa_audit_log WHERE factor_id = %s AND event = %s",
                      (factor, event)).fetchone()[0]
        if wait_for is None or n >= wait_for or time.time() > deadline:
            return n
        time.sleep(0.05)


def test_a_reject_signs_the_user_out_of_every_session(db):
    """Sessions s1 (service verification) and s2 (gateway mode, PostgREST's claims) are aal2;
    a rejected verification from a third connection leaves none of the user's sessions aal2
    when its error reaches the caller."""
    user, s1, s2 = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    answer('{"decision": "continue"}')
    with connect(DB) as admin, connect(DB) as gateway:
        fid, secret = enrolled(admin, user, s1)
        assert verify(admin, fid, totp_now(secret, 1), s2)[1]
        claims = f'{{"sub": "{user}", "session_id": "{s2}"}}'
        assert (aal(admin, s1, user), aal(admin, s2, user)) == ("aal2", "aal2")
        answer('{"decision": "reject", "message": "Too many attempts: you are signed out."}')
        with connect(DB) as attacker:
            t0 = time.perf_counter()
            with pytest.raises(psycopg.errors.InvalidAuthorizationSpecification) as e:
                verify(attacker, fid, wrong_codes(secret, 1)[0], uuid.uuid4())
            took = (time.perf_counter() - t0) * 1000
        assert e.value.diag.message_primary == "Too many attempts: you are signed out."
        assert "signed out" in e.value.diag.message_detail
        after = (aal(admin, s1, user), aal(admin, s2, user))
        # The gateway's view of s2 (auth.aal() for PostgREST's claims, as a policy reads it).
        with gateway.transaction():
            gateway.execute("SELECT set_config('request.jwt.claims', %s, true)", (claims,))
            gateway.execute("SELECT set_config('mfa_auth.jwt_claims_roles', current_user, true)")
            gw = gateway.execute("SELECT auth.aal()::text").fetchone()[0]
        rejected = audit_count(admin, fid, "verification_rejected", wait_for=1 if PRELOADED else None, timeout=3)
    print(f"\n  reject: {took:.1f} ms until the error; after it s1, s2 = {after}, gateway sees {gw}; "
          f"verification_rejected rows: {rejected}")
    if PRELOADED:
        assert after == ("aal1", "aal1") and gw == "aal1" and rejected == 1
    else:  # documented: the sign-out is rolled back with the caller's error
        assert after == ("aal2", "aal2") and rejected == 0


RP_ID, ORIGIN = "example.com", "https://app.example.com"


def test_every_factor_kind_and_entry_point_meets_the_hook(db):
    """One hook, every verification: TOTP by challenge and by factor, a phone code, a WebAuthn
    assertion (a software authenticator), a recovery code, and the self-service mfa_verify in
    database-session mode. With the hook rejecting, each raises 28000 and none is recorded; the
    hook saw each kind's factor_type."""
    user, session = uuid.uuid4(), uuid.uuid4()
    role = "e2e_hooks_" + uuid.uuid4().hex[:8]
    answer('{"decision": "continue"}')
    seen, results = [], {}
    with connect(DB) as c:
        c.execute("CREATE TABLE IF NOT EXISTS hooks.seen (factor_type text, valid boolean)")
        c.execute("TRUNCATE hooks.seen")
        c.execute("""CREATE OR REPLACE FUNCTION hooks.recording(event jsonb) RETURNS jsonb LANGUAGE plpgsql
                     SET search_path = pg_catalog AS $$
                     BEGIN
                       INSERT INTO hooks.seen VALUES (event->>'factor_type', (event->>'valid')::boolean);
                       RETURN (SELECT decision FROM hooks.answer);
                     END $$""")
        c.execute(f"SET mfa_auth.webauthn_rp_id = '{RP_ID}'")
        c.execute(f"SET mfa_auth.webauthn_origins = '{ORIGIN}'")
        c.execute("SET mfa_auth.phone_resend_interval = 0")
        c.execute("SET mfa_auth.verification_hook = 'hooks.recording'")
        fid, secret = enrolled(c, user, session)
        codes = [r[0] for r in c.execute("SELECT * FROM auth.generate_recovery_codes(%s, %s, 4)", (user, session))]
        key = SoftKey()
        wf = c.execute("SELECT auth.enroll_webauthn(%s, 'key')", (user,)).fetchone()[0]
        wid, options = c.execute("SELECT challenge_id, webauthn FROM auth.create_challenge(%s, '10.0.0.1')", (wf,)).fetchone()
        assert c.execute("SELECT auth.verify_webauthn(%s, %s::jsonb, NULL, %s)",
                         (wid, json.dumps(key.create(options, ORIGIN)), session)).fetchone()[0]
        pf = c.execute("SELECT auth.enroll_phone(%s, '+14155550177')", (user,)).fetchone()[0]
        pch, pcode = c.execute("SELECT challenge_id, code FROM auth.create_challenge(%s, '10.0.0.1')", (pf,)).fetchone()
        assert c.execute("SELECT auth.verify_challenge(%s, %s, NULL, %s)", (pch, pcode, session)).fetchone()[0]
        c.execute(f"CREATE ROLE {role} LOGIN")
        c.execute(f"GRANT USAGE ON SCHEMA auth TO {role}")
        c.execute(f"ALTER ROLE {role} SET mfa_auth.database_sessions = on")
        c.execute(f"ALTER ROLE {role} SET mfa_auth.verification_hook = 'hooks.recording'")
        answer('{"decision": "reject", "message": "policy"}')
        pch, pcode = c.execute("SELECT challenge_id, code FROM auth.create_challenge(%s, '10.0.0.1')", (pf,)).fetchone()
        wid, options = c.execute("SELECT challenge_id, webauthn FROM auth.create_challenge(%s, '10.0.0.1')", (wf,)).fetchone()
        c.execute("SELECT auth.create_challenge(%s, '10.0.0.1')", (fid,))
        calls = {
            "totp verify_factor": ("SELECT auth.verify_factor(%s, %s, NULL, %s)", (fid, totp_now(secret, 1), session)),
            "phone verify_challenge": ("SELECT auth.verify_challenge(%s, %s, NULL, %s)", (pch, pcode, session)),
            "webauthn verify_webauthn": ("SELECT auth.verify_webauthn(%s, %s::jsonb, NULL, %s)",
                                         (wid, json.dumps(key.get(options, ORIGIN)), session)),
            "recovery verify_recovery_code": ("SELECT auth.verify_recovery_code(%s, %s, NULL, %s)", (user, codes[0], session)),
        }
        for name, (sql, args) in calls.items():
            try:
                results[name] = c.execute(sql, args).fetchone()[0]
            except psycopg.Error as e:
                results[name] = e.sqlstate
        try:
            with connect(DB, user=role) as me:
                _, msecret, _, _ = me.execute("SELECT * FROM auth.enroll_my_totp()").fetchone()
                try:
                    results["self-service mfa_verify"] = me.execute("SELECT auth.mfa_verify(%s)", (totp_now(msecret),)).fetchone()[0]
                except psycopg.Error as e:
                    results["self-service mfa_verify"] = e.sqlstate
                mine = me.execute("SELECT auth.aal()::text").fetchone()[0]
        finally:
            c.execute(f"DELETE FROM auth.mfa_factors WHERE user_id = auth.role_user_id('{role}')")
            c.execute(f"DROP OWNED BY {role}")
            c.execute(f"DROP ROLE {role}")
        seen = c.execute("SELECT factor_type, valid FROM hooks.seen ORDER BY 1").fetchall()
        unverified = c.execute("""SELECT count(*) FROM auth.mfa_challenges WHERE id IN (%s, %s) AND verified_at IS NULL""",
                               (pch, wid)).fetchone()[0]
        left = c.execute("SELECT remaining FROM auth.recovery_codes_status(%s)", (user,)).fetchone()[0]
    answer('{"decision": "continue"}')
    print(f"\n  rejecting hook, every kind: {results}; self-service session {mine}; challenges left unverified "
          f"{unverified} of 2; recovery codes left {left} of 4; what the hook saw while continuing: {seen}")
    assert results == {k: "28000" for k in results} and len(results) == 5
    assert mine == "aal1" and unverified == 2 and left == 4
    # While it continued (the verifications that set the user up), it saw each kind once, valid.
    assert seen == [("phone", True), ("totp", True), ("webauthn", True)]


def test_what_a_rollback_keeps_after_a_reject(db):
    """A hook that rejects every verification: the right code tried plainly, in a transaction
    rolled back, and in a savepoint rolled back to then committed, is never a success; the
    rejections stay in the trail (preloaded) and the attempts stay counted. Once the hook
    continues, the same factor verifies normally."""
    user, session = uuid.uuid4(), uuid.uuid4()
    answer('{"decision": "continue"}')
    with connect(DB) as c:
        fid, secret = enrolled(c, user)
        answer('{"decision": "reject", "message": "no"}')
        outcomes = {}
        code = totp_now(secret, 1)
        for pattern in ("plain", "rolled back", "savepoint"):
            ch = c.execute("SELECT challenge_id FROM auth.create_challenge(%s, '10.0.0.1')", (fid,)).fetchone()[0]
            try:
                if pattern == "plain":
                    c.execute("SELECT auth.verify_challenge(%s, %s, NULL, %s)", (ch, code, session))
                elif pattern == "rolled back":
                    with c.transaction(force_rollback=True):
                        c.execute("SELECT auth.verify_challenge(%s, %s, NULL, %s)", (ch, code, session))
                else:
                    with c.transaction():
                        try:
                            with c.transaction():  # a savepoint
                                c.execute("SELECT auth.verify_challenge(%s, %s, NULL, %s)", (ch, code, session))
                        except psycopg.Error as e:
                            outcomes[pattern + " (inner)"] = e.sqlstate
                        c.execute("SELECT 1")
                outcomes[pattern] = "returned"
            except psycopg.Error as e:
                outcomes[pattern] = e.sqlstate
            outcomes[pattern + " verified"] = c.execute(
                "SELECT verified_at IS NOT NULL FROM auth.mfa_challenges WHERE id = %s", (ch,)).fetchone()[0]
        success = audit_count(c, fid, "verification", timeout=0)
        rejected = audit_count(c, fid, "verification_rejected", wait_for=3 if PRELOADED else None)
        claim = aal(c, session, user)
        # The attempts stay counted: the third rejection saw the first two as failures.
        counted = c.execute("""SELECT max((payload->'traits'->>'failed_attempts')::int) FROM auth.mfa_audit_log
                                WHERE factor_id = %s AND event = 'verification_rejected'""", (fid,)).fetchone()[0]
        answer('{"decision": "continue"}')
        _, after = verify(c, fid, code, session)
    print(f"\n  rejecting hook: {outcomes}; success rows {success} (the enrollment's own first verification), "
          f"rejected rows {rejected}, session {claim}, failures the last rejection saw {counted}; hook continues: {after}")
    assert outcomes == {"plain": "28000", "plain verified": False, "rolled back": "28000", "rolled back verified": False,
                        "savepoint (inner)": "28000", "savepoint": "returned", "savepoint verified": False}
    assert claim == "aal1" and after is True
    assert rejected == (3 if PRELOADED else 0)
    if PRELOADED:
        assert counted == 2


def test_a_failing_hook_fails_closed_and_is_logged(db):
    with connect(DB) as c:
        fid, secret = enrolled(c, uuid.uuid4())
        c.execute("SET mfa_auth.verification_hook = 'hooks.raises'")
        with pytest.raises(psycopg.errors.ExternalRoutineInvocationException) as e:
            verify(c, fid, totp_now(secret, 1))
        failed = audit_count(c, fid, "hook_failed", wait_for=1 if PRELOADED else None)
        log = c.execute("SELECT pg_read_file(current_setting('data_directory') || '/../server.log')").fetchone()[0]
    line = [ln for ln in log.splitlines() if "refused (fail closed)" in ln and "policy service is down" in ln]
    print(f"\n  raising hook: {e.value.sqlstate} {e.value.diag.message_primary!r}; hook_failed rows {failed}; "
          f"server log: {line[-1][-120:] if line else None}")
    assert "the policy service is down" in e.value.diag.message_primary and "P0001" in e.value.diag.message_detail
    assert line and failed == (1 if PRELOADED else 0)


def test_the_enrollment_hook_gates_every_enrollment(db):
    """A gateway user (PostgREST's claims, per transaction) and the service: with the enrollment
    hook rejecting, enroll_my_totp, enroll_totp, enroll_phone and generate_recovery_codes each
    fail with 42501 and the hook's message, and nothing is created; the event the hook saw for
    the gateway call carried the session and its aal."""
    role = "e2e_hooks_" + uuid.uuid4().hex[:8]
    user, session = uuid.uuid4(), uuid.uuid4()
    claims = f'{{"sub": "{user}", "session_id": "{session}"}}'
    results = {}
    with connect(DB) as admin:
        admin.execute("CREATE TABLE IF NOT EXISTS hooks.enrollments (event jsonb)")
        admin.execute("""CREATE OR REPLACE FUNCTION hooks.gate(event jsonb) RETURNS jsonb LANGUAGE plpgsql
                         SET search_path = pg_catalog AS $$
                         BEGIN
                           INSERT INTO hooks.enrollments VALUES (event);
                           RETURN CASE WHEN event->>'friendly_name' = 'allowed' THEN '{"decision": "continue"}'::jsonb
                                       ELSE '{"decision": "reject", "message": "Enrollment is closed."}'::jsonb END;
                         END $$""")
        admin.execute(f"CREATE ROLE {role} LOGIN")
        admin.execute(f"GRANT USAGE ON SCHEMA auth TO {role}")
        admin.execute(f"ALTER ROLE {role} SET mfa_auth.jwt_claims_roles = '{role}'")
        admin.execute(f"ALTER ROLE {role} SET mfa_auth.enrollment_hook = 'hooks.gate'")
    try:
        with connect(DB, user=role) as a, connect(DB) as admin:
            admin.execute("SET mfa_auth.enrollment_hook = 'hooks.gate'")
            with a.transaction():
                gateway_tx(a, claims)
                fid = a.execute("SELECT factor_id FROM auth.enroll_my_totp('allowed')").fetchone()[0]
            # (The hook's row commits with the enrollment.)
            event = admin.execute("SELECT event FROM hooks.enrollments WHERE event->>'user_id' = %s", (str(user),)).fetchone()
            for name, conn, sql, args in (
                    ("enroll_my_totp", a, "SELECT * FROM auth.enroll_my_totp('second')", ()),
                    ("enroll_totp", admin, "SELECT * FROM auth.enroll_totp(%s, 'laptop')", (user,)),
                    ("enroll_phone", admin, "SELECT auth.enroll_phone(%s, '+14155550178', 'work')", (user,)),
                    ("generate_recovery_codes", admin, "SELECT auth.generate_recovery_codes(%s, %s)", (user, session))):
                try:
                    with conn.transaction():
                        if conn is a:
                            gateway_tx(a, claims)
                        conn.execute(sql, args)
                    results[name] = "created"
                except psycopg.Error as e:
                    results[name] = (e.sqlstate, e.diag.message_primary)
            factors = admin.execute("SELECT count(*) FROM auth.mfa_factors WHERE user_id = %s", (user,)).fetchone()[0]
    finally:
        with connect(DB) as admin:
            admin.execute(f"DROP OWNED BY {role}")
            admin.execute(f"DROP ROLE {role}")
    print(f"\n  enrollment hook: the allowed one's event {event[0] if event else None}; then {results}; factors of the user {factors}")
    assert fid and factors == 1
    assert results == {k: ("42501", "Enrollment is closed.") for k in results} and len(results) == 4
    assert event[0]["session_id"] == str(session) and event[0]["aal"] == "aal1" and event[0]["factor_type"] == "totp"


def gateway_tx(conn, claims):
    conn.execute("SELECT set_config('request.jwt.claims', %s, true)", (claims,))


def stale(c, user, age):
    """Makes every MFA claim of `user` `age` old (a verification `age` ago)."""
    c.execute("""UPDATE auth.mfa_amr_claims a SET updated_at = now() - %s::interval
                  WHERE (a.session_id, a.authentication_method) IN
                        (SELECT session_id, authentication_method FROM auth.mfa_verified_claims WHERE user_id = %s)""",
              (age, user))


def test_reverify_window_behind_pgbouncer_transaction_pooling(db):
    """Gateway mode as PostgREST runs it (claims per transaction) through PgBouncer in
    transaction mode: with mfa_auth.reverify_window = 5min, a session verified 1 minute ago
    may enroll another factor; 1 hour ago it is refused (42501, with the hint), as is removing
    a factor and generating recovery codes, until it verifies again."""
    role = "e2e_hooks_" + uuid.uuid4().hex[:8]
    user, session = uuid.uuid4(), uuid.uuid4()
    claims = f'{{"sub": "{user}", "session_id": "{session}"}}'
    answer('{"decision": "continue"}')
    with connect(DB) as admin:
        admin.execute(f"CREATE ROLE {role} LOGIN")
        admin.execute(f"GRANT USAGE ON SCHEMA auth TO {role}")
        admin.execute(f"ALTER ROLE {role} SET mfa_auth.jwt_claims_roles = '{role}'")
        admin.execute(f"ALTER ROLE {role} SET mfa_auth.reverify_window = '5min'")
    bouncer = PgBouncer([role], "transaction", db=DB)
    results = {}
    try:
        with bouncer.connect(role) as a, connect(DB) as admin:
            with a.transaction():
                gateway_tx(a, claims)
                fid, secret, _, _ = a.execute("SELECT * FROM auth.enroll_my_totp('phone')").fetchone()
            # (Verified by the service for the session: self-service mfa_verify inside PostgREST's
            # transaction needs the library preloaded, and the window is about the session's claims.)
            assert verify(admin, fid, totp_now(secret), session)[1]
            for age in ("1 minute", "1 hour"):
                stale(admin, user, age)
                try:
                    with a.transaction():
                        gateway_tx(a, claims)
                        a.execute("SELECT * FROM auth.enroll_my_totp(%s)", ("laptop " + age,))
                    results[age] = "enrolled"
                except psycopg.Error as e:
                    results[age] = (e.sqlstate, e.diag.message_hint[:40])
            for what, sql in (("unenroll", "SELECT auth.unenroll_my_factor(%s)"),
                              ("recovery codes", "SELECT count(*) FROM auth.generate_my_recovery_codes()")):
                try:
                    with a.transaction():
                        gateway_tx(a, claims)
                        a.execute(sql, (fid,) if "%s" in sql else ())
                    results[what + " 1 hour"] = "ran"
                except psycopg.Error as e:
                    results[what + " 1 hour"] = e.sqlstate
            assert verify(admin, fid, totp_now(secret, 1), session)[1]
            with a.transaction():
                gateway_tx(a, claims)
                results["recovery codes after verifying"] = a.execute(
                    "SELECT count(*) FROM auth.generate_my_recovery_codes()").fetchone()[0]
            # The service functions are not affected.
            results["service enroll 1 hour"] = bool(stale(admin, user, "1 hour") or admin.execute(
                "SELECT factor_id FROM auth.enroll_totp(%s, 'service')", (user,)).fetchone()[0])
    finally:
        bouncer.stop()
        with connect(DB) as admin:
            admin.execute(f"DROP OWNED BY {role}")
            admin.execute(f"DROP ROLE {role}")
    print(f"\n  reverify_window 5min behind PgBouncer (transaction pooling): {results}")
    assert results["1 minute"] == "enrolled"
    assert results["1 hour"] == ("42501", "Verify a factor in this session first (a")
    assert results["unenroll 1 hour"] == "42501" and results["recovery codes 1 hour"] == "42501"
    assert results["recovery codes after verifying"] == 10 and results["service enroll 1 hour"] is True


def test_reverify_window_in_database_session_mode(db):
    """psql-style self-service: the connection is the session (mfa_auth.database_sessions)."""
    role = "e2e_hooks_" + uuid.uuid4().hex[:8]
    with connect(DB) as admin:
        admin.execute(f"CREATE ROLE {role} LOGIN")
        admin.execute(f"GRANT USAGE ON SCHEMA auth TO {role}")
        admin.execute(f"ALTER ROLE {role} SET mfa_auth.database_sessions = on")
        admin.execute(f"ALTER ROLE {role} SET mfa_auth.reverify_window = '5min'")
    results = {}
    try:
        with connect(DB, user=role) as me, connect(DB) as admin:
            user = me.execute("SELECT auth.uid()").fetchone()[0]
            fid, secret, _, _ = me.execute("SELECT * FROM auth.enroll_my_totp('phone')").fetchone()
            assert me.execute("SELECT auth.mfa_verify(%s)", (totp_now(secret),)).fetchone()[0]
            for age in ("1 minute", "1 hour"):
                stale(admin, user, age)
                try:
                    me.execute("SELECT * FROM auth.enroll_my_totp(%s)", ("laptop " + age,))
                    results[age] = "enrolled"
                except psycopg.Error as e:
                    results[age] = e.sqlstate
    finally:
        with connect(DB) as admin:
            admin.execute(f"DELETE FROM auth.mfa_factors WHERE user_id = auth.role_user_id('{role}')")
            admin.execute(f"DROP OWNED BY {role}")
            admin.execute(f"DROP ROLE {role}")
    print(f"\n  reverify_window 5min in database-session mode: {results}")
    assert results == {"1 minute": "enrolled", "1 hour": "42501"}
