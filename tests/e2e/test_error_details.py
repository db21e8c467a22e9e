"""No error a client receives carries a Rust backtrace, even from a server started with
RUST_BACKTRACE=1 in its environment (a container image or a systemd unit may set it). On
0.2.0, a Postgres error raised inside one of the extension's statements (a lock timeout, a
statement timeout, a serialization failure) reached the client with a DETAIL listing the
extension's Rust frames (`mfa_auth::spi_util::run`, `mfa_auth::challenges::create`, ...).
Each case here keeps its own SQLSTATE and message; the DETAIL, hint and context name no Rust
source."""
import threading
import time
import uuid

import psycopg
import pytest

from conftest import ThrowawayCluster, totp_now

RUST = ("mfa_auth::", "pgrx", ".rs:", "panicking", "backtrace", "__rust")


@pytest.fixture(scope="module")
def cluster():
    c = ThrowawayCluster("mfa_auth-backtrace.", "shared_preload_libraries=mfa_auth",
                         env={"RUST_BACKTRACE": "full"})
    with c.connect() as admin:
        admin.execute("CREATE EXTENSION mfa_auth")
    yield c
    c.stop()


def clean(error):
    d = error.diag
    text = " ".join(x or "" for x in (d.message_primary, d.message_detail, d.message_hint, d.context))
    bad = [w for w in RUST if w in text]
    assert not bad, f"{error.sqlstate}: {text[:2000]}"
    return d


def hold(cluster, statement, args, seconds):
    """Runs `statement` in a transaction kept open for `seconds` in a thread; returns it."""
    ready = threading.Event()

    def go():
        with cluster.connect(autocommit=False) as c:
            c.execute(statement, args)
            ready.set()
            time.sleep(seconds)
            c.rollback()

    t = threading.Thread(target=go)
    t.start()
    ready.wait(5)
    return t


def test_a_lock_timeout_inside_a_verification(cluster):
    with cluster.connect() as c:
        fid, secret, _, _ = c.execute("SELECT * FROM auth.enroll_totp(gen_random_uuid())").fetchone()
        c.execute("SELECT auth.create_challenge(%s, '10.0.0.1')", (fid,))  # open, for verify_factor
    holder = hold(cluster, "SELECT auth.create_challenge(%s, '10.0.0.1')", (fid,), 2)
    try:
        with cluster.connect() as c:
            c.execute("SET lock_timeout = '100ms'")
            for statement, args in (("SELECT auth.create_challenge(%s, '10.0.0.1')", (fid,)),
                                    ("SELECT auth.verify_factor(%s, %s)", (fid, totp_now(secret))),
                                    ("SELECT auth.unenroll_factor(%s)", (fid,))):
                with pytest.raises(psycopg.errors.LockNotAvailable) as e:
                    c.execute(statement, args)
                d = clean(e.value)
                assert d.message_primary == "canceling statement due to lock timeout"
    finally:
        holder.join()


def test_a_statement_timeout_inside_an_enrollment(cluster):
    user = uuid.uuid4()
    with cluster.connect() as c:
        fid = c.execute("SELECT factor_id FROM auth.enroll_totp(%s)", (user,)).fetchone()[0]
    # The per-user lock, held by an enrollment of the same user.
    holder = hold(cluster, "SELECT auth.enroll_totp(%s)", (user,), 2)
    try:
        with cluster.connect() as c:
            c.execute("SET statement_timeout = '150ms'")
            with pytest.raises(psycopg.errors.QueryCanceled) as e:
                c.execute("SELECT auth.enroll_totp(%s)", (user,))
            clean(e.value)
    finally:
        holder.join()
    assert fid


def test_a_serialization_failure_inside_a_verification(cluster):
    with cluster.connect() as c:
        fid, secret, _, _ = c.execute("SELECT * FROM auth.enroll_totp(gen_random_uuid())").fetchone()
        c.execute("SELECT auth.create_challenge(%s, '10.0.0.1')", (fid,))
    with cluster.connect(autocommit=False) as rr:
        rr.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        rr.execute("SELECT 1")  # the snapshot, before the factor changes
        with cluster.connect() as other:
            other.execute("SELECT auth.create_challenge(%s, '10.0.0.1')", (fid,))  # updates the factor row
        with pytest.raises(psycopg.errors.SerializationFailure) as e:
            rr.execute("SELECT auth.verify_factor(%s, %s)", (fid, totp_now(secret)))
        clean(e.value)
        rr.rollback()


def test_the_server_log_has_no_backtrace_either(cluster):
    import os
    with open(os.path.join(cluster.root, "log")) as f:
        log = f.read()
    assert "mfa_auth::" not in log and "__rust" not in log
