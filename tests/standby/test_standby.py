"""A streaming standby, as users run one to scale reads: a primary (preloaded, a key file) and
a hot standby made from it with `pg_basebackup -R`, both on loopback, over real connections.

- A gateway session verified on the primary is aal2 on the standby once the standby has
  replayed it: auth.aal(), auth.amr(), auth.mfa_verified_within() and a restrictive RLS policy.
- Every function that writes refuses on the standby with SQLSTATE 25006 and a hint to call
  the primary (0.2.0: XX000 "cannot assign TransactionIds during recovery"), before it counts
  an attempt in the standby's shared memory.
- Database-session mode (psql) on a standby: its own session has no claim and cannot get one.
- Neither server logs a crash (scripts/test.sh scans both logs) or an internal error.
Codes come from pyotp."""
import json
import os
import shutil
import sys
import tempfile
import time
import uuid

import psycopg
import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "e2e"))
from conftest import PG_BIN, ThrowawayCluster, _free_port, as_cluster_user, keep_log, totp_now, write_key_file  # noqa: E402

DB = "standby_app"
GATEWAY = "standby_gateway"
PLAIN = "standby_psql_user"


class Standby:
    """A hot standby of `primary`, streaming from it."""

    def __init__(self, primary):
        self.root = tempfile.mkdtemp(prefix="mfa_auth-standby.")
        os.chmod(self.root, 0o755)
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres", "postgres")
        self.data, self.port = os.path.join(self.root, "data"), _free_port()
        as_cluster_user([f"{PG_BIN}/pg_basebackup", "-h", "127.0.0.1", "-p", str(primary.port), "-U", "postgres",
                         "-D", self.data, "-R", "-X", "stream", "-c", "fast"])
        opts = (f"-p {self.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={self.root}"
                " -c hot_standby=on")
        env = {k: v for k, v in os.environ.items() if not k.startswith("RUST_")}
        as_cluster_user([f"{PG_BIN}/pg_ctl", "-D", self.data, "-l", os.path.join(self.root, "log"), "-w",
                         "-o", opts, "start"], env=env)
        self.conn = dict(host="127.0.0.1", port=self.port, user="postgres", dbname=DB, autocommit=True)

    def connect(self, **kw):
        return psycopg.connect(**{**self.conn, **kw})

    def log(self):
        with open(os.path.join(self.root, "log")) as f:
            return f.read()

    def stop(self):
        as_cluster_user([f"{PG_BIN}/pg_ctl", "-D", self.data, "-m", "fast", "-w", "stop"])
        keep_log(os.path.join(self.root, "log"), os.path.basename(self.root))
        shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture(scope="module")
def pair():
    primary = ThrowawayCluster("mfa_auth-primary.", "shared_preload_libraries=mfa_auth")
    standby = None
    try:
        keys = write_key_file(os.path.join(primary.root, "mfa_auth.keys"))
        with primary.connect() as c:
            c.execute(f"ALTER SYSTEM SET mfa_auth.encryption_keys_file = '{keys}'")
            c.execute("SELECT pg_reload_conf()")
            c.execute(f"CREATE DATABASE {DB}")
            c.execute(f"CREATE ROLE {GATEWAY} LOGIN")
            c.execute(f"CREATE ROLE {PLAIN} LOGIN")
            # Catalog settings replicate: the standby trusts the same gateway role.
            c.execute(f"ALTER DATABASE {DB} SET mfa_auth.jwt_claims_roles = '{GATEWAY}'")
            c.execute(f"ALTER ROLE {PLAIN} SET mfa_auth.database_sessions = on")
            c.execute(f"ALTER DATABASE {DB} SET mfa_auth.webauthn_rp_id = 'localhost'")
            c.execute(f"ALTER DATABASE {DB} SET mfa_auth.webauthn_origins = 'http://localhost:8080'")
        with primary.connect(dbname=DB) as c:
            c.execute("CREATE EXTENSION mfa_auth")
            c.execute("""CREATE TABLE docs (id int, body text);
                         INSERT INTO docs SELECT g, 'secret ' || g FROM generate_series(1, 3) g;
                         ALTER TABLE docs ENABLE ROW LEVEL SECURITY;
                         CREATE POLICY readable ON docs FOR SELECT USING (true);
                         CREATE POLICY mfa_required ON docs AS RESTRICTIVE FOR SELECT USING (auth.aal() = 'aal2');""")
            c.execute(f"GRANT SELECT ON docs TO {GATEWAY}, {PLAIN}")
        standby = Standby(primary)
        yield primary, standby
    finally:
        if standby:
            standby.stop()
        primary.stop()


def replayed(primary, standby):
    """Waits until the standby has replayed everything the primary has written so far."""
    with primary.connect(dbname=DB) as p:
        lsn = p.execute("SELECT pg_current_wal_lsn()").fetchone()[0]
    with standby.connect() as s:
        for _ in range(200):
            if s.execute("SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", (lsn,)).fetchone()[0]:
                return
            time.sleep(0.05)
    raise AssertionError(f"the standby did not replay {lsn} in 10 s")


def as_gateway(conn, user, session):
    conn.execute("SELECT set_config('request.jwt.claims', %s, false)",
                 (json.dumps({"sub": str(user), "session_id": str(session), "role": "authenticated"}),))


def test_a_session_verified_on_the_primary_is_aal2_on_the_standby(pair):
    primary, standby = pair
    user, session, other = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    with primary.connect(dbname=DB) as p:
        fid, secret, _, _ = p.execute("SELECT * FROM auth.enroll_totp(%s)", (user,)).fetchone()
        p.execute("SELECT auth.create_challenge(%s, '10.0.0.1')", (fid,))
        assert p.execute("SELECT auth.verify_factor(%s, %s, '10.0.0.1', %s)",
                         (fid, totp_now(secret), session)).fetchone()[0] is True
    replayed(primary, standby)
    with standby.connect(user=GATEWAY) as s:
        assert s.execute("SELECT pg_is_in_recovery()").fetchone()[0] is True
        as_gateway(s, user, session)
        assert s.execute("SELECT auth.aal()::text, auth.mfa_verified_within('5 minutes')").fetchone() == ("aal2", True)
        assert [m["method"] for m in s.execute("SELECT auth.amr()").fetchone()[0]] == ["totp"]
        assert s.execute("SELECT count(*) FROM docs").fetchone()[0] == 3
        # Another session of the same user, and the same session claimed for another user: aal1.
        as_gateway(s, user, other)
        assert s.execute("SELECT auth.aal()::text").fetchone()[0] == "aal1"
        assert s.execute("SELECT count(*) FROM docs").fetchone()[0] == 0
        as_gateway(s, uuid.uuid4(), session)
        assert s.execute("SELECT auth.aal()::text").fetchone()[0] == "aal1"
    # An unenroll on the primary removes the claim; the standby follows after replay.
    with primary.connect(dbname=DB) as p:
        p.execute("SELECT auth.unenroll_factor(%s)", (fid,))
    replayed(primary, standby)
    with standby.connect(user=GATEWAY) as s:
        as_gateway(s, user, session)
        assert s.execute("SELECT auth.aal()::text").fetchone()[0] == "aal1"
        assert s.execute("SELECT count(*) FROM docs").fetchone()[0] == 0


def writing_calls(ids):
    """Every function that writes, with arguments that would work on the primary."""
    fid, cid, wid, user, session = ids
    return {
        "auth.enroll_totp()": f"SELECT auth.enroll_totp('{uuid.uuid4()}')",
        "auth.enroll_phone()": f"SELECT auth.enroll_phone('{uuid.uuid4()}', '+14155550123')",
        "auth.enroll_webauthn()": f"SELECT auth.enroll_webauthn('{uuid.uuid4()}')",
        "auth.unenroll_factor()": f"SELECT auth.unenroll_factor('{fid}')",
        "auth.unlock_factor()": f"SELECT auth.unlock_factor('{fid}')",
        "auth.create_challenge()": f"SELECT auth.create_challenge('{fid}', '10.0.0.1')",
        "auth.verify_challenge()": f"SELECT auth.verify_challenge('{cid}', '123456', '10.0.0.1', '{session}')",
        "auth.verify_factor()": f"SELECT auth.verify_factor('{fid}', '123456', '10.0.0.1', '{session}')",
        "auth.verify_webauthn()": f"SELECT auth.verify_webauthn('{cid}', '{{}}'::jsonb)",
        "auth.record_amr()": f"SELECT auth.record_amr('{session}', 'password')",
        "auth.cleanup_challenges()": "SELECT auth.cleanup_challenges()",
        "auth.cleanup_challenges_batched()": "CALL auth.cleanup_challenges_batched()",
        "auth.rotate_secrets()": "SELECT auth.rotate_secrets()",
        "auth.rotate_secrets_batched()": "CALL auth.rotate_secrets_batched()",
        "auth.generate_recovery_codes()": f"SELECT auth.generate_recovery_codes('{user}', '{session}')",
        "auth.verify_recovery_code()": f"SELECT auth.verify_recovery_code('{user}', 'aaaa-bbbb-cccc-dddd', NULL, '{session}')",
        "auth.delete_recovery_codes()": f"SELECT auth.delete_recovery_codes('{user}')",
    }


PROCEDURE_STEPS = {"auth.rotate_secrets_batched()": "auth.rotate_secrets()"}

SELF_SERVICE = {
    "auth.enroll_my_totp()": "SELECT auth.enroll_my_totp()",
    "auth.enroll_my_webauthn()": "SELECT auth.enroll_my_webauthn()",
    "auth.mfa_verify()": "SELECT auth.mfa_verify('123456')",
    "auth.mfa_verify_webauthn()": f"SELECT auth.mfa_verify_webauthn('{uuid.uuid4()}', '{{}}'::jsonb)",
    "auth.mfa_verify_recovery_code()": "SELECT auth.mfa_verify_recovery_code('aaaa-bbbb-cccc-dddd')",
    "auth.webauthn_options()": "SELECT auth.webauthn_options()",
    "auth.generate_my_recovery_codes()": "SELECT auth.generate_my_recovery_codes()",
    "auth.unenroll_my_factor()": f"SELECT auth.unenroll_my_factor('{uuid.uuid4()}')",
}


def test_every_function_that_writes_refuses_on_the_standby_with_25006(pair):
    primary, standby = pair
    user, session = uuid.uuid4(), uuid.uuid4()
    with primary.connect(dbname=DB) as p:
        fid, secret, _, _ = p.execute("SELECT * FROM auth.enroll_totp(%s)", (user,)).fetchone()
        cid = p.execute("SELECT challenge_id FROM auth.create_challenge(%s, '10.0.0.1')", (fid,)).fetchone()[0]
        assert p.execute("SELECT auth.verify_challenge(%s, %s, '10.0.0.1', %s)",
                         (cid, totp_now(secret), session)).fetchone()[0] is True
        cid = p.execute("SELECT challenge_id FROM auth.create_challenge(%s, '10.0.0.1')", (fid,)).fetchone()[0]
        wid = p.execute("SELECT auth.enroll_webauthn(%s)", (uuid.uuid4(),)).fetchone()[0]
    replayed(primary, standby)
    calls = writing_calls((fid, cid, wid, user, session))
    refused = []
    with standby.connect() as s:
        for name, statement in calls.items():
            with pytest.raises(psycopg.errors.ReadOnlySqlTransaction) as e:
                s.execute(statement)
            diag = e.value.diag
            # A procedure's message names the function it calls (its CONTEXT names the procedure).
            called = PROCEDURE_STEPS.get(name, name)
            assert diag.message_primary == f"{called} cannot run on a standby server: it writes to the primary's tables", name
            assert "Call it on the primary" in diag.message_hint, name
            refused.append(name)
        # No attempt was counted in the standby's own shared memory.
        assert s.execute("SELECT tracked_factors FROM auth.attempt_tracking()").fetchone()[0] == 0
    with standby.connect(user=PLAIN) as me:
        for name, statement in SELF_SERVICE.items():
            with pytest.raises(psycopg.errors.ReadOnlySqlTransaction) as e:
                me.execute(statement)
            assert e.value.diag.message_primary.startswith(f"{name} cannot run on a standby server"), name
            refused.append(name)
    # The primary's state is what it was: the challenge still open, the factor unlocked.
    with primary.connect(dbname=DB) as p:
        assert p.execute("SELECT verified_at IS NULL FROM auth.mfa_challenges WHERE id = %s", (cid,)).fetchone()[0]
        assert p.execute("SELECT failed_attempts FROM auth.mfa_factors WHERE id = %s", (fid,)).fetchone()[0] == 0
    print(f"\n  refused on the standby with 25006: {len(refused)} functions ({', '.join(refused)})")
    assert len(refused) == len(calls) + len(SELF_SERVICE)


def test_read_only_transactions_on_the_primary_refuse_with_25006(pair):
    primary, _ = pair
    with primary.connect(dbname=DB) as p:
        p.execute("BEGIN READ ONLY")
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction) as e:
            p.execute("SELECT auth.enroll_totp(gen_random_uuid())")
        assert e.value.diag.message_primary == "auth.enroll_totp() cannot run in a read-only transaction: it writes"
        p.execute("ROLLBACK")


def test_database_session_mode_on_a_standby_never_claims_aal2(pair):
    """A psql user on a standby has a database session of its own there, which no claim
    can name: the primary records claims for its own backends' sessions. So it is aal1, and
    mfa_verify refuses (25006) rather than pretending."""
    primary, standby = pair
    with primary.connect(dbname=DB, user=PLAIN) as p:
        _, secret, _, _ = p.execute("SELECT * FROM auth.enroll_my_totp()").fetchone()
        assert p.execute("SELECT auth.mfa_verify(%s)", (totp_now(secret),)).fetchone()[0] is True
        assert p.execute("SELECT auth.aal()::text").fetchone()[0] == "aal2"
        primary_session = p.execute("SELECT auth.session_id()").fetchone()[0]
        replayed(primary, standby)
        with standby.connect(user=PLAIN) as s:
            mine = s.execute("SELECT auth.session_id()").fetchone()[0]
            assert mine is not None and mine != primary_session
            assert s.execute("SELECT auth.aal()::text").fetchone()[0] == "aal1"
            assert s.execute("SELECT count(*) FROM docs").fetchone()[0] == 0
            with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
                s.execute("SELECT auth.mfa_verify(%s)", (totp_now(secret, 1),))
            assert s.execute("SELECT auth.aal()::text").fetchone()[0] == "aal1"


def test_no_internal_error_on_either_server(pair):
    primary, standby = pair
    with open(os.path.join(primary.root, "log")) as f:
        logs = {"primary": f.read(), "standby": standby.log()}
    for name, text in logs.items():
        bad = [line for line in text.splitlines()
               if "internal error" in line or "XX000" in line or "cannot assign TransactionIds" in line]
        assert not bad, (name, bad[:5])
    print(f"\n  server logs: primary {len(logs['primary'].splitlines())} lines, standby "
          f"{len(logs['standby'].splitlines())} lines, no internal error")
