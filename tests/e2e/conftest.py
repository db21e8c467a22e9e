"""Fixtures for end-to-end tests: real TCP connections to the throwaway cluster that
scripts/test.sh starts (PGHOST/PGPORT/PGUSER point at it, PGUSER is a superuser)."""
import contextlib
import os
import uuid

import psycopg
import pytest

DB = "mfa_auth_e2e"
# The configuration of the cluster under test (scripts/lib.sh): keyfile, nokey, inline, nopreload.
CONFIG = os.environ.get("MFA_AUTH_CONFIG", "keyfile")
PRELOADED = CONFIG != "nopreload"


def connect(dbname=DB, user=None, **kw):
    return psycopg.connect(
        host=os.environ.get("PGHOST", "127.0.0.1"),
        port=os.environ.get("PGPORT", "5432"),
        user=user or os.environ.get("PGUSER", "postgres"),
        dbname=dbname,
        autocommit=True,
        **kw,
    )


@pytest.fixture(scope="session")
def database():
    with connect("postgres") as c:
        c.execute(f"DROP DATABASE IF EXISTS {DB} WITH (FORCE)")
        c.execute(f"CREATE DATABASE {DB}")
        # The psql-style tests use database sessions (off by default: see test_pooler.py).
        c.execute(f"ALTER DATABASE {DB} SET mfa_auth.database_sessions = on")
    with connect() as c:
        c.execute("CREATE EXTENSION mfa_auth")
    yield DB


def totp_now(secret, steps_ahead=0):
    """A pyotp code of the current time step (or `steps_ahead` steps later, still inside the
    default window of 1 step: a factor never accepts a step twice, so a second verification of
    one factor within 30 s uses the next step). Waits out the last second of a step."""
    import time

    import pyotp
    if 30 - time.time() % 30 < 1.5:
        time.sleep(30 - time.time() % 30 + 0.1)
    return pyotp.TOTP(secret).at(time.time() + 30 * steps_ahead)


def wrong_codes(secret, n):
    """`n` distinct 6-digit codes, none of them `secret`'s code within 2 steps of now: a fixed
    guess such as '000000' is a factor's right code about 3 times in a million, which a test
    making thousands of guesses would meet now and then."""
    import time

    import pyotp
    now = time.time()
    right = {pyotp.TOTP(secret).at(now + 30 * k) for k in range(-2, 3)}
    return [c for c in (f"{i:06d}" for i in range(n + len(right))) if c not in right][:n]


@pytest.fixture
def secured_table(database):
    """A table readable only by aal2 sessions, the way the README shows it (SELECT granted to
    PUBLIC, so every role of a test can try)."""
    name = "docs_" + uuid.uuid4().hex[:8]
    with connect() as c:
        c.execute(f"""
            CREATE TABLE {name} (id int, body text);
            INSERT INTO {name} SELECT g, 'secret ' || g FROM generate_series(1, 3) g;
            ALTER TABLE {name} ENABLE ROW LEVEL SECURITY;
            CREATE POLICY readable ON {name} FOR SELECT USING (true);
            CREATE POLICY mfa_required ON {name} AS RESTRICTIVE FOR SELECT USING (auth.aal() = 'aal2');
            GRANT SELECT ON {name} TO PUBLIC;
        """)
    yield name
    with connect() as c:
        c.execute(f"DROP TABLE {name}")


@pytest.fixture
def admin(database):
    with connect() as c:
        yield c


SERVICE_FUNCTIONS = [
    "auth.enroll_totp(uuid, text, text, text)",
    "auth.enroll_phone(uuid, text, text)",
    "auth.unenroll_factor(uuid)",
    "auth.create_challenge(uuid, inet)",
    "auth.verify_challenge(uuid, text, inet, uuid)",
    "auth.verify_factor(uuid, text, inet, uuid)",
    "auth.cleanup_challenges(interval, integer)",
    "auth.record_amr(uuid, text)",
    "auth.session_amr(uuid)",
    "auth.session_amr(uuid, uuid)",
    "auth.session_aal(uuid)",
    "auth.session_aal(uuid, uuid)",
    "auth.enroll_webauthn(uuid, text)",
    "auth.verify_webauthn(uuid, jsonb, inet, uuid)",
    "auth.generate_recovery_codes(uuid, uuid, integer)",
    "auth.verify_recovery_code(uuid, text, inet, uuid)",
    "auth.recovery_codes_status(uuid)",
    "auth.delete_recovery_codes(uuid)",
]


@pytest.fixture
def service_role(plain_role):
    """A non-superuser role granted EXECUTE on the service functions, as a DBA would."""
    with connect() as c:
        for f in SERVICE_FUNCTIONS:
            c.execute(f"GRANT EXECUTE ON FUNCTION {f} TO {plain_role}")
    yield plain_role


@pytest.fixture
def plain_role(database):
    """A fresh LOGIN role with no privileges beyond PUBLIC's; dropped afterwards."""
    name = "e2e_" + uuid.uuid4().hex[:12]
    with connect() as c:
        c.execute(f"CREATE ROLE {name} LOGIN")
    yield name
    with connect() as c:
        c.execute(f"DROP OWNED BY {name}")
        c.execute(f"DROP ROLE {name}")


# The server binaries the throwaway clusters run (scripts/lib.sh exports its PG_BIN).
PG_BIN = os.environ.get("MFA_AUTH_PG_BIN", "/usr/lib/postgresql/15/bin")


def _free_port():
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def as_cluster_user(args, **kw):
    """Runs a server command as the postgres OS user when we are root (Postgres refuses root)."""
    import subprocess
    if os.geteuid() == 0:
        args = ["runuser", "-u", "postgres", "--"] + args
    return subprocess.run(args, check=True, capture_output=True, text=True, **kw)


def write_key_file(path):
    """A key file of one random key (k1) at `path`, mode 0600, the cluster user's: what
    mfa_auth.encryption_keys_file reads. Returns `path`."""
    import base64
    import shutil
    with open(path, "w") as f:
        f.write("k1:" + base64.b64encode(os.urandom(32)).decode() + "\n")
    os.chmod(path, 0o600)
    if os.geteuid() == 0:
        shutil.chown(path, "postgres", "postgres")
    return path


@contextlib.contextmanager
def keyed_cluster(prefix, *options):
    """A ThrowawayCluster that preloads mfa_auth with a key file of its own (outside its data
    directory); at the end, prepared transactions a test left are rolled back, the cluster
    stopped (its log kept) and the key removed."""
    import shutil
    import tempfile
    keys = tempfile.mkdtemp(prefix=prefix + "keys-")
    os.chmod(keys, 0o755)
    key_file = write_key_file(os.path.join(keys, "mfa_auth.keys"))
    c = ThrowawayCluster(prefix, "shared_preload_libraries=mfa_auth", f"mfa_auth.encryption_keys_file={key_file}",
                         *options)
    try:
        yield c
    finally:
        with c.connect() as admin:
            for gid, in admin.execute("SELECT gid FROM pg_prepared_xacts").fetchall():
                admin.execute(f"ROLLBACK PREPARED '{gid}'")
        c.stop()
        shutil.rmtree(keys, ignore_errors=True)


class ThrowawayCluster:
    """A cluster of its own on loopback, for tests that must not share server state (shared
    memory, settings) with the main one. `options` are postgres -c settings."""

    def __init__(self, prefix, *options, env=None):
        import shutil
        import tempfile
        self.root = tempfile.mkdtemp(prefix=prefix)
        os.chmod(self.root, 0o755)
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres", "postgres")
        self.data, self.port = os.path.join(self.root, "data"), _free_port()
        as_cluster_user([f"{PG_BIN}/initdb", "-D", self.data, "-U", "postgres", "--auth=trust"])
        opts = f"-p {self.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={self.root}"
        opts += "".join(f" -c {o}" for o in options)
        self.opts = opts  # (for a start after a stop: pg_ctl start -o)
        server_env = {k: v for k, v in os.environ.items() if not k.startswith("RUST_")}
        server_env.update(env or {})
        as_cluster_user([f"{PG_BIN}/pg_ctl", "-D", self.data, "-l", os.path.join(self.root, "log"), "-w",
                         "-o", opts, "start"], env=server_env)
        self.conn = dict(host="127.0.0.1", port=self.port, user="postgres", dbname="postgres", autocommit=True)

    def connect(self, **kw):
        return psycopg.connect(**{**self.conn, **kw})

    def pg_ctl(self, *args, timeout=90):
        """pg_ctl on this cluster (as the cluster user), its log the cluster's; the finished process."""
        import subprocess
        return subprocess.run((["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else [])
                              + [f"{PG_BIN}/pg_ctl", "-D", self.data, "-l", os.path.join(self.root, "log"), *args],
                              capture_output=True, text=True, timeout=timeout)

    def stop(self, keep_files=None):
        """Stops the server and removes it; its log is kept for the crash scan, or, with
        `keep_files`, that function is called with the cluster's root first (to keep its logs
        its own way)."""
        import shutil
        as_cluster_user([f"{PG_BIN}/pg_ctl", "-D", self.data, "-m", "immediate", "-w", "stop"])
        if keep_files:
            keep_files(self.root)
        else:
            keep_log(os.path.join(self.root, "log"), os.path.basename(self.root))
        shutil.rmtree(self.root, ignore_errors=True)


def keep_log(path, name):
    """Copies a throwaway cluster's server log to $MFA_AUTH_LOG_DIR (scripts/test.sh scans every
    log there for crashes, PANICs and failed assertions after the level) before it is removed."""
    import shutil
    dest = os.environ.get("MFA_AUTH_LOG_DIR")
    if dest and os.path.exists(path):
        os.makedirs(dest, exist_ok=True)
        shutil.copyfile(path, os.path.join(dest, name + ".log"))
