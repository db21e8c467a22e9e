"""Master keys from a file (mfa_auth.encryption_keys_file), against a real cluster of its own
with a log file and default log settings: rotation as documented (edit the file, reload,
rotate) never writes a key to the server log; a pg_monitor member sees no key by any means;
per-role/database settings are refused; a file others can read is refused, with no key in
force. Codes come from pyotp (conftest.totp_now)."""
import base64
import os
import shutil
import time
import uuid

import psycopg
import pytest
from psycopg import sql

from conftest import ThrowawayCluster, totp_now


def new_key():
    return base64.b64encode(os.urandom(32)).decode()


@pytest.fixture(scope="module")
def cluster():
    c = ThrowawayCluster("mfa_auth-keyfile.", "shared_preload_libraries=mfa_auth")
    with c.connect() as admin:
        admin.execute("CREATE EXTENSION mfa_auth")
        admin.execute("CREATE ROLE monitor LOGIN IN ROLE pg_monitor")
    yield c
    c.stop()


def write_keys(cluster, lines, mode=0o600):
    path = os.path.join(cluster.root, "mfa_auth.keys")
    tmp = path + ".new"
    with open(tmp, "w") as f:
        f.write("# mfa_auth master keys, current first\n" + "".join(line + "\n" for line in lines))
    os.chmod(tmp, mode)
    if os.geteuid() == 0:
        shutil.chown(tmp, "postgres", "postgres")
    os.replace(tmp, path)  # atomically, as an operator should
    return path


def reload(admin):
    admin.execute("SELECT pg_reload_conf()")
    time.sleep(0.5)  # the postmaster and backends apply it asynchronously


def log_text(cluster):
    with open(os.path.join(cluster.root, "log")) as f:
        return f.read()


def test_rotation_through_the_file_never_logs_a_key(cluster):
    k1, k2 = new_key(), new_key()
    with cluster.connect() as admin:
        path = write_keys(cluster, [f"k1:{k1}"])
        admin.execute(sql.SQL("ALTER SYSTEM SET mfa_auth.encryption_keys_file = {}").format(sql.Literal(path)))
        reload(admin)
    with cluster.connect() as app:
        fid, secret, _, _ = app.execute("SELECT * FROM auth.enroll_totp(gen_random_uuid())").fetchone()
        assert app.execute("SELECT secret LIKE 'mfa1:k1:%%' FROM auth.mfa_factors WHERE id = %s", (fid,)).fetchone()[0]
        app.execute("SELECT auth.create_challenge(%s, '::1')", (fid,))
        assert app.execute("SELECT auth.verify_factor(%s, %s)", (fid, totp_now(secret))).fetchone()[0]
        # A phone code is hashed with a key derived from k1, and its key id kept beside it.
        pf = app.execute("SELECT auth.enroll_phone(gen_random_uuid(), '+14155552671')").fetchone()[0]
        pc, code = app.execute("SELECT challenge_id, code FROM auth.create_challenge(%s, '::1')", (pf,)).fetchone()
        stored = app.execute("SELECT otp_code FROM auth.mfa_challenges WHERE id = %s", (pc,)).fetchone()[0]
        assert stored.startswith("v2$k1$") and code not in stored
    # Rotation as documented: the new key first in the file, reload, re-seal, drop the old key.
    with cluster.connect() as admin:
        write_keys(cluster, [f"k2:{k2}", f"k1:{k1}"])
        reload(admin)
        admin.execute("CALL auth.rotate_secrets_batched()")
        assert admin.execute("SELECT count(*) FROM auth.mfa_factors WHERE secret LIKE 'mfa1:k2:%'").fetchone()[0] == 1
        assert admin.execute("SELECT auth.rotate_secrets()").fetchone()[0] == 0
        # The open phone challenge, hashed under k1, still verifies while k1 is listed.
        assert admin.execute("SELECT auth.verify_challenge(%s, %s)", (pc, code)).fetchone()[0]
        write_keys(cluster, [f"k2:{k2}"])
        reload(admin)
    with cluster.connect() as app:
        app.execute("SELECT auth.create_challenge(%s, '::1')", (fid,))
        assert app.execute("SELECT auth.verify_factor(%s, %s)", (fid, totp_now(secret, 1))).fetchone()[0]
    log = log_text(cluster)
    print(f"\n  server log: {len(log.splitlines())} lines; occurrences of k1: {log.count(k1)}, of k2: {log.count(k2)}; "
          f"of the path: {log.count(path)}")
    assert k1 not in log and k2 not in log
    assert path in log  # the reload that set it names the path, and only the path


def test_a_monitoring_role_sees_no_key(cluster):
    legacy = new_key()
    with cluster.connect() as admin:
        # The deprecated setting as well: its value reaches the log (as documented, with a WARNING)...
        admin.execute(sql.SQL("ALTER SYSTEM SET mfa_auth.encryption_keys = {}").format(sql.Literal(f"old:{legacy}")))
        reload(admin)
    try:
        assert "mfa_auth.encryption_keys is deprecated" in log_text(cluster)
        with psycopg.connect(**{**cluster.conn, "user": "monitor"}) as mon:
            # ...but no one reads it back.
            assert mon.execute("SHOW mfa_auth.encryption_keys").fetchone()[0] == "(hidden)"
            rows = mon.execute("SELECT name, setting FROM pg_settings WHERE name LIKE 'mfa_auth.%'").fetchall()
            show_all = mon.execute("SHOW ALL").fetchall()
            file_path = mon.execute("SHOW mfa_auth.encryption_keys_file").fetchone()[0]
        everything = repr(rows) + repr(show_all) + file_path
        assert legacy not in everything and file_path.endswith("mfa_auth.keys")
        with open(file_path) as f:
            for line in f:
                if ":" in line and not line.startswith("#"):
                    assert line.split(":", 1)[1].strip() not in everything
    finally:
        with cluster.connect() as admin:
            admin.execute("ALTER SYSTEM RESET mfa_auth.encryption_keys")
            reload(admin)


def test_per_role_and_database_settings_are_refused(cluster):
    with cluster.connect() as admin:
        with pytest.raises(psycopg.errors.InvalidParameterValue) as e:
            admin.execute(f"ALTER ROLE monitor SET mfa_auth.encryption_keys = 'k9:{new_key()}'")
        assert "pg_db_role_setting" in (e.value.diag.message_detail or "")
        with pytest.raises(psycopg.errors.InvalidParameterValue):
            admin.execute(f"ALTER DATABASE postgres SET mfa_auth.encryption_keys = 'k9:{new_key()}'")
        with pytest.raises(psycopg.errors.CantChangeRuntimeParam):
            admin.execute("ALTER ROLE monitor SET mfa_auth.encryption_keys_file = '/tmp/elsewhere'")
        assert admin.execute("SELECT count(*) FROM pg_db_role_setting").fetchone()[0] == 0


def test_a_readable_key_file_is_refused_with_no_key_in_force(cluster):
    with cluster.connect() as admin:
        path = admin.execute("SHOW mfa_auth.encryption_keys_file").fetchone()[0]
        with open(path) as f:
            lines = [line.strip() for line in f if line.strip() and not line.startswith("#")]
        write_keys(cluster, lines, mode=0o640)
        reload(admin)
    try:
        with cluster.connect() as app:
            with pytest.raises(psycopg.errors.ObjectNotInPrerequisiteState, match="group- or world-accessible"):
                app.execute("SELECT auth.enroll_totp(gen_random_uuid())")
            assert app.execute("SELECT count(*) FROM auth.mfa_factors WHERE secret NOT LIKE 'mfa1:%'").fetchone()[0] == 0
        assert "cannot be used: it is group- or world-accessible" in log_text(cluster)
    finally:
        with cluster.connect() as admin:
            write_keys(cluster, lines)
            reload(admin)
    with cluster.connect() as app:
        assert app.execute("SELECT count(*) FROM auth.enroll_totp(gen_random_uuid())").fetchone()[0] == 1


def test_phone_hashes_without_a_key_are_unkeyed(cluster):
    """Without any master key the v1 (unkeyed) hash is used, as the README says plainly."""
    with cluster.connect() as admin:
        admin.execute("SET mfa_auth.encryption_keys = ''")
        admin.execute("ALTER SYSTEM RESET mfa_auth.encryption_keys_file")
        reload(admin)
    try:
        with cluster.connect() as app:
            pf = app.execute("SELECT auth.enroll_phone(%s, '+14155552672')", (uuid.uuid4(),)).fetchone()[0]
            pc = app.execute("SELECT challenge_id FROM auth.create_challenge(%s, '::1')", (pf,)).fetchone()[0]
            assert app.execute("SELECT otp_code LIKE 'v1$%%' FROM auth.mfa_challenges WHERE id = %s", (pc,)).fetchone()[0]
    finally:
        with cluster.connect() as admin:
            path = os.path.join(cluster.root, "mfa_auth.keys")
            admin.execute(sql.SQL("ALTER SYSTEM SET mfa_auth.encryption_keys_file = {}").format(sql.Literal(path)))
            reload(admin)
