"""Behind a real pooler (Debian's pgbouncer, started here on loopback): a client must never
inherit another client's aal2. Attack 3 of the trust-model issue: in transaction pooling
two clients share one server connection, and `server_reset_query` (DISCARD ALL) is not run
between their transactions. Codes come from pyotp."""
import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid

import psycopg
import pytest

from conftest import connect
from conftest import totp_now as code

POOL_DB = "mfa_auth_pool"


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PgBouncer:
    """pgbouncer in front of the test cluster's POOL_DB, run as the postgres OS user (it
    refuses root), with the given pool mode and extra settings; one server connection."""

    def __init__(self, roles, pool_mode, db=POOL_DB, **extra):
        self.db = db
        self.dir = tempfile.mkdtemp(prefix="mfa_auth-pgbouncer.")
        os.chmod(self.dir, 0o755)
        self.port = _free_port()
        with open(os.path.join(self.dir, "users.txt"), "w") as f:
            f.writelines(f'"{r}" ""\n' for r in roles)
        settings = {
            "listen_addr": "127.0.0.1", "listen_port": self.port, "unix_socket_dir": "",
            "auth_type": "trust", "auth_file": os.path.join(self.dir, "users.txt"),
            "pool_mode": pool_mode, "default_pool_size": 1,
            "logfile": os.path.join(self.dir, "pgbouncer.log"), "pidfile": os.path.join(self.dir, "pgbouncer.pid"),
            **extra,
        }
        pg = f"host={os.environ.get('PGHOST', '127.0.0.1')} port={os.environ.get('PGPORT', '5432')} dbname={db}"
        ini = f"[databases]\n{db} = {pg}\n[pgbouncer]\n" + "".join(f"{k} = {v}\n" for k, v in settings.items())
        with open(os.path.join(self.dir, "pgbouncer.ini"), "w") as f:
            f.write(ini)
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres", "postgres")
            for name in os.listdir(self.dir):
                shutil.chown(os.path.join(self.dir, name), "postgres", "postgres")
        cmd = ["pgbouncer", "-d", os.path.join(self.dir, "pgbouncer.ini")]
        if os.geteuid() == 0:
            cmd = ["runuser", "-u", "postgres", "--"] + cmd
        subprocess.run(cmd, check=True, capture_output=True, text=True)
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("pgbouncer did not start: " + open(settings["logfile"]).read()[-2000:])

    def connect(self, user):
        # prepare_threshold=None: no server-side prepared statements across pooled clients.
        return psycopg.connect(host="127.0.0.1", port=self.port, user=user, dbname=self.db,
                               autocommit=True, prepare_threshold=None)

    def stop(self):
        pidfile = os.path.join(self.dir, "pgbouncer.pid")
        if os.path.exists(pidfile):
            subprocess.run(["kill", open(pidfile).read().strip()], check=False)
            for _ in range(100):
                if not os.path.exists(pidfile):
                    break
                time.sleep(0.05)
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture(scope="module")
def pool_db():
    """A database with every setting at its default (mfa_auth.database_sessions off) and a
    table readable only at aal2."""
    with connect("postgres") as c:
        c.execute(f"DROP DATABASE IF EXISTS {POOL_DB} WITH (FORCE)")
        c.execute(f"CREATE DATABASE {POOL_DB}")
    with connect(POOL_DB) as c:
        c.execute("""
            CREATE EXTENSION mfa_auth;
            CREATE TABLE docs (id int, body text);
            INSERT INTO docs SELECT g, 'secret ' || g FROM generate_series(1, 3) g;
            ALTER TABLE docs ENABLE ROW LEVEL SECURITY;
            CREATE POLICY readable ON docs FOR SELECT USING (true);
            CREATE POLICY mfa_required ON docs AS RESTRICTIVE FOR SELECT USING (auth.aal() = 'aal2');
            GRANT SELECT ON docs TO PUBLIC;
        """)
    yield POOL_DB
    with connect("postgres") as c:
        c.execute(f"DROP DATABASE IF EXISTS {POOL_DB} WITH (FORCE)")


@pytest.fixture
def pool_role(pool_db):
    name = "e2e_pool_" + uuid.uuid4().hex[:10]
    with connect(POOL_DB) as c:
        c.execute(f"CREATE ROLE {name} LOGIN")
    yield name
    with connect(POOL_DB) as c:
        c.execute(f"DELETE FROM auth.mfa_factors WHERE user_id = auth.role_user_id('{name}')")
        c.execute(f"DROP ROLE {name}")


def state(conn):
    """(backend pid, aal, rows of the protected table) as this client sees them."""
    return conn.execute("SELECT pg_backend_pid(), auth.aal()::text, (SELECT count(*) FROM docs)").fetchone()


def test_attack_3_transaction_pooling_with_default_settings(pool_role):
    with connect(POOL_DB) as admin:  # the user has a verified TOTP factor (enrolled by the service)
        fid, secret, _, _ = admin.execute("SELECT * FROM auth.enroll_totp(auth.role_user_id(%s))", (pool_role,)).fetchone()
        admin.execute("SELECT auth.create_challenge(%s, '::1')", (fid,))
        assert admin.execute("SELECT auth.verify_factor(%s, %s)", (fid, code(secret))).fetchone()[0]
    bouncer = PgBouncer([pool_role], "transaction")
    try:
        with bouncer.connect(pool_role) as a, bouncer.connect(pool_role) as b:
            with pytest.raises(psycopg.errors.ObjectNotInPrerequisiteState) as e:
                a.execute("SELECT auth.mfa_verify(%s)", (code(secret, 1),))
            assert "mfa_auth.database_sessions" in str(e.value)
            assert "transaction pooler" in e.value.diag.message_hint
            # The same for the other self-service verifications (recovery codes, WebAuthn).
            for call in ("SELECT auth.mfa_verify_recovery_code('7kq4-m2xp-9dwe-j3ab')",
                         "SELECT auth.generate_my_recovery_codes()",
                         "SELECT auth.webauthn_options()"):
                with pytest.raises(psycopg.errors.ObjectNotInPrerequisiteState, match="mfa_auth.database_sessions"):
                    a.execute(call)
            pid_a, aal_a, rows_a = state(a)
            pid_b, aal_b, rows_b = state(b)
            assert pid_a == pid_b  # one server connection serves both clients
            assert (aal_a, rows_a, aal_b, rows_b) == ("aal1", 0, "aal1", 0)
            assert b.execute("SELECT auth.session_id()").fetchone()[0] is None
    finally:
        bouncer.stop()


def test_gateway_mode_behind_a_transaction_pooler(pool_role):
    """PostgREST's way: claims set per transaction (set_config(..., true)); the next client's
    transaction on the same server connection has none."""
    with connect(POOL_DB) as admin:
        admin.execute(f"ALTER ROLE {pool_role} SET mfa_auth.jwt_claims_roles = '{pool_role}'")
    user, session = uuid.uuid4(), uuid.uuid4()
    claims = f'{{"sub": "{user}", "session_id": "{session}"}}'
    bouncer = PgBouncer([pool_role], "transaction")
    try:
        with bouncer.connect(pool_role) as a, bouncer.connect(pool_role) as b:
            with a.transaction():
                a.execute("SELECT set_config('request.jwt.claims', %s, true)", (claims,))
                _, secret, _, _ = a.execute("SELECT * FROM auth.enroll_my_totp()").fetchone()
            with a.transaction():
                a.execute("SELECT set_config('request.jwt.claims', %s, true)", (claims,))
                assert a.execute("SELECT auth.mfa_verify(%s)", (code(secret),)).fetchone()[0]
                pid_a, aal_a, rows_a = state(a)
            with b.transaction():
                pid_b, aal_b, rows_b = state(b)
                uid_b = b.execute("SELECT auth.uid()").fetchone()[0]
            assert pid_a == pid_b
            assert (aal_a, rows_a) == ("aal2", 3)
            assert (uid_b, aal_b, rows_b) == (None, "aal1", 0)
    finally:
        bouncer.stop()


def _enroll_and_verify(conn):
    _, secret, _, _ = conn.execute("SELECT * FROM auth.enroll_my_totp()").fetchone()
    assert conn.execute("SELECT auth.mfa_verify(%s)", (code(secret),)).fetchone()[0]


def test_database_sessions_with_session_pooling_is_safe(pool_role):
    """Documented safe setup 1: PgBouncer in session mode (its default server_reset_query,
    DISCARD ALL, runs when a client leaves) with mfa_auth.database_sessions on."""
    with connect(POOL_DB) as admin:
        admin.execute(f"ALTER ROLE {pool_role} SET mfa_auth.database_sessions = on")
    bouncer = PgBouncer([pool_role], "session")
    try:
        with bouncer.connect(pool_role) as a:
            _enroll_and_verify(a)
            pid_a, aal_a, rows_a = state(a)
            assert (aal_a, rows_a) == ("aal2", 3)
        with bouncer.connect(pool_role) as b:  # the next client gets the same server connection
            pid_b, aal_b, rows_b = state(b)
        assert pid_a == pid_b and (aal_b, rows_b) == ("aal1", 0)
    finally:
        bouncer.stop()


def test_database_sessions_with_transaction_pooling_and_reset_always_is_safe(pool_role):
    """Documented safe setup 2: transaction pooling with server_reset_query_always = 1. The
    aal2 then lasts for the verifying transaction only, for the verifying client too."""
    with connect(POOL_DB) as admin:
        admin.execute(f"ALTER ROLE {pool_role} SET mfa_auth.database_sessions = on")
    bouncer = PgBouncer([pool_role], "transaction", server_reset_query_always=1)
    try:
        with bouncer.connect(pool_role) as a, bouncer.connect(pool_role) as b:
            with a.transaction():
                _enroll_and_verify(a)
                pid_a, aal_a, rows_a = state(a)
            pid_b, aal_b, rows_b = state(b)
            assert pid_a == pid_b
            assert (aal_a, rows_a, aal_b, rows_b) == ("aal2", 3, "aal1", 0)
            assert state(a)[1:] == ("aal1", 0)
    finally:
        bouncer.stop()


def test_database_sessions_with_plain_transaction_pooling_is_unsafe_as_documented(pool_role):
    """Why mfa_auth.database_sessions is off by default: switched on behind a transaction
    pooler without a reset, the next client inherits the server connection's session."""
    with connect(POOL_DB) as admin:
        admin.execute(f"ALTER ROLE {pool_role} SET mfa_auth.database_sessions = on")
    bouncer = PgBouncer([pool_role], "transaction")
    try:
        with bouncer.connect(pool_role) as a, bouncer.connect(pool_role) as b:
            _enroll_and_verify(a)
            assert state(b)[1:] == ("aal2", 3)
    finally:
        bouncer.stop()
