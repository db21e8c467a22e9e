"""The audit trail (auth.mfa_audit_log), on a preloaded cluster of its own that also writes each
event to a jsonlog server log: the rollback attack shows in the trail, no secret or code reaches
the trail or the log, only mfa_auth_auditor reads it, retention, subtransactions, a crash."""
import glob
import json
import os
import re
import signal
import time
import uuid

import psycopg
import pyotp
import pytest

from conftest import ThrowawayCluster, wrong_codes

DB = "audit"


@pytest.fixture(scope="module")
def cluster():
    c = ThrowawayCluster("mfa_auth-audit-", "shared_preload_libraries=mfa_auth", "logging_collector=on",
                         "log_destination=stderr,jsonlog", "log_directory=log", "mfa_auth.audit_log_server=on",
                         "mfa_auth.max_failed_attempts=3")
    with c.connect() as admin:
        admin.execute(f"CREATE DATABASE {DB}")
    with c.connect(dbname=DB) as admin:
        admin.execute("CREATE EXTENSION mfa_auth")
        admin.execute(f"ALTER DATABASE {DB} SET mfa_auth.database_sessions = on")
    c.crashed_on_purpose = None
    yield c

    def keep(root):
        # Every log for the crash scan of scripts/test.sh, without the lines of the crash
        # test_a_crash_loses_only_what_was_queued made on purpose (it checks them itself).
        dest = os.environ.get("MFA_AUTH_LOG_DIR")
        if not dest:
            return
        os.makedirs(dest, exist_ok=True)
        for f in [os.path.join(root, "log")] + glob.glob(os.path.join(root, "data", "log", "*")):
            lines = open(f, errors="replace").read().splitlines(keepends=True)
            if c.crashed_on_purpose:
                lines = [ln for ln in lines if not on_purpose(ln, c.crashed_on_purpose)]
            with open(os.path.join(dest, "audit-" + os.path.basename(f) + ".log"), "w") as out:
                out.writelines(lines)
    c.stop(keep_files=keep)


READY = "database system is ready to accept connections"


def server_log(cluster):
    """The cluster's plain-text server log (the jsonlog copy is left out)."""
    return "\n".join(open(f, errors="replace").read() for f in sorted(glob.glob(os.path.join(cluster.root, "data", "log", "*.log"))))


def on_purpose(line, pid):
    return f"PID {pid}" in line or "all server processes terminated; reinitializing" in line


def db(cluster, **kw):
    return cluster.connect(dbname=DB, **kw)


def rows(conn, where, *args, wait_for=1, timeout=10.0):
    """Audit rows matching `where`, waiting (the writer runs every 100 ms) until there are
    at least `wait_for` of them."""
    deadline = time.time() + timeout
    while True:
        found = conn.execute(
            f"SELECT event, outcome, user_id, factor_id, session_id, host(ip_address), payload"
            f"  FROM auth.mfa_audit_log WHERE {where} ORDER BY created_at, id", args).fetchall()
        if len(found) >= wait_for or time.time() > deadline:
            return found
        time.sleep(0.1)


def now_code(secret, ahead=0):
    if 30 - time.time() % 30 < 1.5:
        time.sleep(30 - time.time() % 30 + 0.1)
    return pyotp.TOTP(secret).at(time.time() + 30 * ahead)


def test_the_rollback_attack_is_in_the_trail(cluster):
    user = uuid.uuid4()
    with db(cluster) as c:
        fid, secret, _, _ = c.execute("SELECT * FROM auth.enroll_totp(%s, 'phone')", (user,)).fetchone()
        ch = c.execute("SELECT challenge_id FROM auth.create_challenge(%s, '192.0.2.7')", (fid,)).fetchone()[0]
        assert c.execute("SELECT auth.verify_challenge(%s, %s, '192.0.2.7')", (ch, now_code(secret))).fetchone()[0]
        guesses = wrong_codes(secret, 2)
        for guess in guesses:
            ch = c.execute("SELECT challenge_id FROM auth.create_challenge(%s, '192.0.2.7')", (fid,)).fetchone()[0]
            c.execute("BEGIN")
            assert not c.execute("SELECT auth.verify_challenge(%s, %s, '192.0.2.7')", (ch, guess)).fetchone()[0]
            c.execute("ROLLBACK")
        found = rows(c, "factor_id = %s AND event = 'verification' AND outcome = 'failure'", fid, wait_for=2)
        print("\n  after two guesses, each rolled back:")
        for r in found:
            print(f"    {r[0]} {r[1]} ip={r[5]} failed_attempts={r[6]['traits']['failed_attempts']}")
        assert [r[6]["traits"]["failed_attempts"] for r in found] == [1, 2]
        assert all(r[2] == user and r[5] == "192.0.2.7" for r in found)
        # The third locks the factor (max_failed_attempts = 3): recorded though rolled back too.
        ch = c.execute("SELECT challenge_id FROM auth.create_challenge(%s, '192.0.2.7')", (fid,)).fetchone()[0]
        c.execute("BEGIN")
        assert not c.execute("SELECT auth.verify_challenge(%s, %s)", (ch, wrong_codes(secret, 3)[2])).fetchone()[0]
        c.execute("ROLLBACK")
        assert rows(c, "factor_id = %s AND event = 'factor_locked'", fid)
        # A refusal as locked, rolled back as well.
        c.execute("BEGIN")
        with pytest.raises(psycopg.errors.ConfigurationLimitExceeded):   # 53400
            c.execute("SELECT auth.verify_factor(%s, %s)", (fid, now_code(secret, 1)))
        c.execute("ROLLBACK")
        assert rows(c, "factor_id = %s AND event IN ('verification', 'challenge_created') AND outcome = 'locked'", fid)


def test_events_of_a_factors_life(cluster):
    user, session = uuid.uuid4(), uuid.uuid4()
    with db(cluster) as c:
        fid, secret, _, _ = c.execute("SELECT * FROM auth.enroll_totp(%s, 'laptop')", (user,)).fetchone()
        ch = c.execute("SELECT challenge_id FROM auth.create_challenge(%s, '::1')", (fid,)).fetchone()[0]
        code = now_code(secret)
        assert c.execute("SELECT auth.verify_challenge(%s, %s, '::1', %s)", (ch, code, session)).fetchone()[0]
        # The same step again: a replay, refused and recorded as one.
        ch = c.execute("SELECT challenge_id FROM auth.create_challenge(%s, '::1')", (fid,)).fetchone()[0]
        assert not c.execute("SELECT auth.verify_challenge(%s, %s, '::1', %s)", (ch, code, session)).fetchone()[0]
        codes = [r[0] for r in c.execute("SELECT * FROM auth.generate_recovery_codes(%s, %s, 4)", (user, session))]
        assert c.execute("SELECT auth.verify_recovery_code(%s, %s, '198.51.100.1', %s)", (user, codes[0], session)).fetchone()[0]
        assert not c.execute("SELECT auth.verify_recovery_code(%s, 'aaaa-bbbb-cccc-dddd', NULL, %s)", (user, session)).fetchone()[0]
        c.execute("SELECT auth.unlock_factor(%s)", (fid,))
        c.execute("SELECT auth.unenroll_factor(%s)", (fid,))
        found = rows(c, "user_id = %s", user, wait_for=11)
        seen = [(r[0], r[1]) for r in found]
        print("\n  " + ", ".join(f"{e}/{o}" if o else e for e, o in seen))
        for expected in [("factor_enrolled", None), ("challenge_created", None), ("verification", "success"),
                         ("factor_verified", None), ("verification", "replay"), ("recovery_codes_generated", None),
                         ("recovery_code_verification", "success"), ("recovery_code_verification", "failure"),
                         ("factor_unlocked", None), ("factor_unenrolled", None), ("claims_removed", None),
                         ("recovery_codes_deleted", None)]:
            assert expected in seen, expected
        removed = [r for r in found if r[0] == "claims_removed"][0]
        assert removed[6]["traits"]["claims"] == 1 and removed[3] == fid
        used = [r for r in found if r[0] == "recovery_code_verification" and r[1] == "success"][0]
        assert used[5] == "198.51.100.1" and used[4] == session
        # Supabase Auth's payload shape.
        p = found[0][6]
        assert p["action"] == "factor_enrolled" and p["actor_id"] == str(user) and p["log_type"] == "mfa"
        assert p["actor_username"] == "postgres" and p["factor_type"] == "totp"
        # Cleanups count what they removed.
        c.execute("SELECT auth.cleanup_challenges('0 seconds')")
        assert rows(c, "event = 'cleanup' AND payload->'traits' ? 'challenges'")


def test_what_a_rolled_back_transaction_did_is_not_recorded(cluster):
    user = uuid.uuid4()
    with db(cluster) as c:
        c.execute("BEGIN")
        gone = c.execute("SELECT factor_id FROM auth.enroll_totp(%s, 'rolled back')", (user,)).fetchone()[0]
        c.execute("ROLLBACK")
        c.execute("BEGIN")
        c.execute("SAVEPOINT s")
        undone = c.execute("SELECT factor_id FROM auth.enroll_totp(%s, 'undone')", (user,)).fetchone()[0]
        c.execute("ROLLBACK TO SAVEPOINT s")
        kept = c.execute("SELECT factor_id FROM auth.enroll_totp(%s, 'kept')", (user,)).fetchone()[0]
        c.execute("COMMIT")
        found = rows(c, "user_id = %s", user)
        time.sleep(0.5)
        found = rows(c, "user_id = %s", user)
        assert [(r[0], r[3]) for r in found] == [("factor_enrolled", kept)], (gone, undone)


def test_no_secret_or_code_in_the_trail_or_the_server_log(cluster):
    made = []
    with db(cluster) as c:
        user, session = uuid.uuid4(), uuid.uuid4()
        fid, secret, uri, _ = c.execute("SELECT * FROM auth.enroll_totp(%s)", (user,)).fetchone()
        made += [secret, uri]
        for ahead in range(2):
            code = now_code(secret, ahead)
            made.append(code)
            ch = c.execute("SELECT challenge_id FROM auth.create_challenge(%s, '::1')", (fid,)).fetchone()[0]
            c.execute("SELECT auth.verify_challenge(%s, %s, NULL, %s)", (ch, code, session))
        for guess in wrong_codes(secret, 2):
            made.append(guess)
            ch = c.execute("SELECT challenge_id FROM auth.create_challenge(%s, '::1')", (fid,)).fetchone()[0]
            c.execute("SELECT auth.verify_challenge(%s, %s)", (ch, guess))
        pf = c.execute("SELECT auth.enroll_phone(%s, '+14155550123')", (user,)).fetchone()[0]
        pc, phone_code = c.execute("SELECT challenge_id, code FROM auth.create_challenge(%s, '::1')", (pf,)).fetchone()
        stored_hash = c.execute("SELECT otp_code FROM auth.mfa_challenges WHERE id = %s", (pc,)).fetchone()[0]
        made += [phone_code, stored_hash]
        c.execute("SELECT auth.verify_challenge(%s, %s, NULL, %s)", (pc, phone_code, session))
        sealed = c.execute("SELECT secret FROM auth.mfa_factors WHERE id = %s", (fid,)).fetchone()[0]
        made.append(sealed)
        codes = [r[0] for r in c.execute("SELECT * FROM auth.generate_recovery_codes(%s, %s, 4)", (user, session))]
        made += codes + [x.replace("-", "") for x in codes]
        c.execute("SELECT auth.verify_recovery_code(%s, %s, NULL, %s)", (user, codes[1], session))
        hashes = [r[0] for r in c.execute("SELECT code_hash FROM auth.mfa_recovery_codes")] if c.execute(
            "SELECT count(*) FROM pg_attribute WHERE attrelid = 'auth.mfa_recovery_codes'::regclass AND attname = 'code_hash'").fetchone()[0] else []  # noqa: E501
        made += hashes
        rows(c, "user_id = %s AND event = 'recovery_code_verification'", user)
        trail = "\n".join(r[0] for r in c.execute("SELECT t::text FROM auth.mfa_audit_log t"))
        n_rows = c.execute("SELECT count(*) FROM auth.mfa_audit_log").fetchone()[0]
    time.sleep(0.3)
    logs = {f: open(f, errors="replace").read() for f in glob.glob(os.path.join(cluster.root, "data", "log", "*"))}
    json_lines = [json.loads(ln) for f, t in logs.items() if f.endswith(".json") for ln in t.splitlines() if ln.strip()]
    audit_lines = [ln["message"] for ln in json_lines if ln.get("message", "").startswith("mfa_auth audit: ")]
    payloads = [json.loads(m[len("mfa_auth audit: "):]) for m in audit_lines]
    assert len(payloads) >= n_rows > 10 and all("action" in p for p in payloads)
    everything = trail + "\n".join(logs.values())
    # Ids and times are made of digits and hex too: a 6-digit code is looked for outside them.
    scrubbed = re.sub(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", "<id>", everything)
    scrubbed = re.sub(r"\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2}(\.\d+)?([+-]\d{2}(:\d{2})?)?", "<time>", scrubbed)
    leaked = [m for m in made if m and (m in everything if len(m) > 10 else re.search(rf"(?<!\d){m}(?!\d)", scrubbed))]
    print(f"\n  {len(made)} secrets and codes looked for in {n_rows} rows and {sum(len(t) for t in logs.values())} "
          f"bytes of server log ({len(audit_lines)} jsonlog audit lines): {len(leaked)} found")
    assert not leaked


def test_only_auditors_read_it_and_no_one_writes_it(cluster):
    with db(cluster) as admin:
        admin.execute("CREATE ROLE audit_app LOGIN; CREATE ROLE audit_reader LOGIN IN ROLE mfa_auth_auditor")
        admin.execute("CREATE ROLE authenticated NOLOGIN")
    try:
        with db(cluster) as admin:
            acl = admin.execute("SELECT relacl::text FROM pg_class WHERE oid = 'auth.mfa_audit_log'::regclass").fetchone()[0]
            print(f"\n  auth.mfa_audit_log ACL: {acl}")
            for role in ("public", "audit_app", "authenticated"):
                assert not admin.execute("SELECT has_table_privilege(%s, 'auth.mfa_audit_log', 'SELECT, INSERT, UPDATE, DELETE, TRUNCATE')", (role,)).fetchone()[0]  # noqa: E501
            assert admin.execute("SELECT has_table_privilege('audit_reader', 'auth.mfa_audit_log', 'SELECT')").fetchone()[0]
            assert not admin.execute("SELECT has_table_privilege('audit_reader', 'auth.mfa_audit_log', 'INSERT, UPDATE, DELETE, TRUNCATE')").fetchone()[0]  # noqa: E501
            assert admin.execute("SELECT count(*) FROM pg_extension e, unnest(e.extconfig) c WHERE c = 'auth.mfa_audit_log'::regclass").fetchone()[0] == 1  # noqa: E501
        with db(cluster, user="audit_app") as app:
            for q in ("SELECT * FROM auth.mfa_audit_log", "INSERT INTO auth.mfa_audit_log (id, event) VALUES (gen_random_uuid(), 'x')",
                      "DELETE FROM auth.mfa_audit_log", "SELECT * FROM auth.audit_status()", "SELECT auth.cleanup_audit_log()"):
                with pytest.raises(psycopg.errors.InsufficientPrivilege):
                    app.execute(q)
        with db(cluster, user="audit_reader") as r:
            assert r.execute("SELECT count(*) FROM auth.mfa_audit_log").fetchone()[0] > 0
            status = r.execute("SELECT * FROM auth.audit_status()").fetchone()
            print(f"  auth.audit_status() as a member of mfa_auth_auditor: {status}")
            assert status[0] is True and status[1] > 0
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                r.execute("UPDATE auth.mfa_audit_log SET outcome = 'success'")
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                r.execute("SELECT auth.cleanup_audit_log()")
    finally:
        with db(cluster) as admin:
            admin.execute("DROP ROLE audit_app; DROP ROLE audit_reader; DROP ROLE authenticated")


def test_retention_deletes_old_rows_along_the_created_at_index(cluster):
    with db(cluster) as c:
        c.execute("""INSERT INTO auth.mfa_audit_log (id, created_at, event)
                     SELECT gen_random_uuid(), now() - interval '100 days' - g * interval '1 second', 'old'
                       FROM generate_series(1, 2500) g""")
        # A trail with many younger rows: the cleanup's cost is in what it deletes, not in them.
        c.execute("""INSERT INTO auth.mfa_audit_log (id, created_at, event)
                     SELECT gen_random_uuid(), now() - g * interval '1 second', 'young' FROM generate_series(1, 50000) g""")
        c.execute("ANALYZE auth.mfa_audit_log")
        plan = "\n".join(r[0] for r in c.execute(
            "EXPLAIN WITH old AS (SELECT l.id FROM auth.mfa_audit_log l WHERE l.created_at < clock_timestamp() - interval '90 days'"
            " ORDER BY l.created_at LIMIT 1000) DELETE FROM auth.mfa_audit_log d USING old WHERE d.id = old.id"))
        assert "Index Scan Backward using mfa_audit_log_created_at_idx" in plan and "Seq Scan on mfa_audit_log l" not in plan, plan
        assert c.execute("SELECT auth.cleanup_audit_log(batch_size => 1000)").fetchone()[0] == 1000
        assert c.execute("SELECT auth.cleanup_audit_log('99 days', 5000)").fetchone()[0] == 1500
        with pytest.raises(psycopg.errors.InvalidParameterValue):
            c.execute("SELECT auth.cleanup_audit_log(batch_size => 0)")
        with pytest.raises(psycopg.errors.InvalidParameterValue):
            c.execute("SELECT auth.cleanup_audit_log('-1 day')")
        # audit_retention = 0 keeps every row: a cleanup without an argument deletes none.
        c.execute("ALTER SYSTEM SET mfa_auth.audit_retention = 0")
        c.execute("SELECT pg_reload_conf()")
        try:
            time.sleep(0.3)
            assert c.execute("SELECT auth.cleanup_audit_log()").fetchone()[0] == 0
            assert c.execute("SELECT count(*) FROM auth.mfa_audit_log WHERE event = 'young'").fetchone()[0] == 50000
        finally:
            c.execute("ALTER SYSTEM RESET mfa_auth.audit_retention")
            c.execute("SELECT pg_reload_conf()")
        c.execute("DELETE FROM auth.mfa_audit_log WHERE event = 'young'")
        # The writer applies mfa_auth.audit_retention itself when it starts.
        c.execute("""INSERT INTO auth.mfa_audit_log (id, created_at, event)
                     SELECT gen_random_uuid(), now() - interval '2 hours', 'old' FROM generate_series(1, 10)""")
        c.execute("ALTER SYSTEM SET mfa_auth.audit_retention = '1h'")
        c.execute("SELECT pg_reload_conf()")
        try:
            time.sleep(3)   # the running writer stops when idle; the next event starts a new one
            c.execute("SELECT auth.enroll_totp(gen_random_uuid())")
            deadline = time.time() + 10
            while c.execute("SELECT count(*) FROM auth.mfa_audit_log WHERE event = 'old'").fetchone()[0] and time.time() < deadline:
                time.sleep(0.2)
            assert c.execute("SELECT count(*) FROM auth.mfa_audit_log WHERE event = 'old'").fetchone()[0] == 0
            assert rows(c, "event = 'cleanup' AND payload->'traits'->>'by' = 'audit_retention'")
        finally:
            c.execute("ALTER SYSTEM RESET mfa_auth.audit_retention")
            c.execute("SELECT pg_reload_conf()")


def test_a_dropped_database_does_not_wait_for_its_writer(cluster):
    with cluster.connect() as admin:
        admin.execute("CREATE DATABASE audit_drop")
        with cluster.connect(dbname="audit_drop") as c:
            c.execute("CREATE EXTENSION mfa_auth")
            c.execute("SELECT auth.enroll_totp(gen_random_uuid())")
            deadline = time.time() + 10
            while not c.execute("SELECT count(*) FROM auth.mfa_audit_log").fetchone()[0] and time.time() < deadline:
                time.sleep(0.1)
        t = time.time()
        admin.execute("DROP DATABASE audit_drop")   # waits for the idle writer (2 s), no error
        print(f"\n  DROP DATABASE right after an event: {time.time() - t:.1f} s")


def test_a_crash_loses_only_what_was_queued(cluster):
    """kill -9 of a backend: the postmaster restarts every process and resets shared memory.
    Events already written stay; events still queued are lost; the trail works afterwards."""
    with db(cluster) as c:
        fid, secret, _, _ = c.execute("SELECT * FROM auth.enroll_totp(gen_random_uuid())").fetchone()
        c.execute("SELECT auth.unlock_factor(%s)", (fid,))
        rows(c, "factor_id = %s AND event = 'factor_unlocked'", fid)
        written_before = c.execute("SELECT count(*) FROM auth.mfa_audit_log").fetchone()[0]
        victim = db(cluster)
        pid = victim.execute("SELECT pg_backend_pid()").fetchone()[0]
        # A burst of failures, then the crash at once (the writer polls every 100 ms).
        for guess in wrong_codes(secret, 2):
            ch = c.execute("SELECT challenge_id FROM auth.create_challenge(%s, '::1')", (fid,)).fetchone()[0]
            c.execute("SELECT auth.verify_challenge(%s, %s)", (ch, guess))
        ready_before = server_log(cluster).count(READY)
        os.kill(pid, signal.SIGKILL)
        cluster.crashed_on_purpose = pid   # the log lines of this crash are expected
    # Wait for the restart to finish: a connection can succeed in the moment before the
    # postmaster has noticed the kill, and the next one then meets recovery mode.
    deadline = time.time() + 30
    while server_log(cluster).count(READY) <= ready_before:
        assert time.time() < deadline, "the server did not restart after the kill"
        time.sleep(0.1)
    while True:
        try:
            with db(cluster) as c:
                c.execute("SELECT 1")
                break
        except psycopg.OperationalError:
            if time.time() > deadline:
                raise
            time.sleep(0.3)
    with db(cluster) as c:
        after = c.execute("SELECT count(*) FROM auth.mfa_audit_log").fetchone()[0]
        failures = c.execute("SELECT count(*) FROM auth.mfa_audit_log WHERE factor_id = %s AND outcome = 'failure'", (fid,)).fetchone()[0]
        print(f"\n  rows before the burst {written_before}, after the crash {after}; of the burst's 2 failures {failures} written")
        assert after >= written_before
        c.execute("SELECT auth.unlock_factor(%s)", (fid,))
        assert rows(c, "factor_id = %s AND event = 'factor_unlocked'", fid, wait_for=2)[-1][0] == "factor_unlocked"
    # This crash was made on purpose: only its own lines may say so.
    log = server_log(cluster)
    crash = re.compile(r"terminated by signal|terminated by exception|exited with exit code ([2-9]|[1-9][0-9])|PANIC:|TRAP: |failed Assert|all server processes terminated")  # noqa: E501
    unexpected = [ln for ln in log.splitlines() if crash.search(ln) and not on_purpose(ln, pid)]
    assert not unexpected, unexpected


def test_the_reserved_writer_serves_one_database_after_another():
    """Two worker slots: the reserved writer's, and one a parallel worker holds (no logical
    replication launcher), so no database can get a writer of its own. Failures in database B,
    then in database C, are written by the reserved writer while the slot is held: it serves B,
    exits when B is idle and is started again, then serves C (0.3.0 before the reserved writer:
    the events waited in the queue until a slot was free)."""
    import threading
    c = ThrowawayCluster("mfa_auth-audit-slots-", "shared_preload_libraries=mfa_auth", "max_worker_processes=2",
                         "max_logical_replication_workers=0", "max_parallel_workers=2")
    try:
        with c.connect() as admin:
            for name in ("slots_b", "slots_c"):
                admin.execute(f"CREATE DATABASE {name}")
                with c.connect(dbname=name) as d:
                    d.execute("CREATE EXTENSION mfa_auth")
        with c.connect(dbname="slots_b") as b, c.connect(dbname="slots_c") as cc, c.connect() as p:
            fb, sb = b.execute("SELECT factor_id, secret FROM auth.enroll_totp(gen_random_uuid())").fetchone()
            fc, sc = cc.execute("SELECT factor_id, secret FROM auth.enroll_totp(gen_random_uuid())").fetchone()
            safe = p.execute("SELECT proparallel FROM pg_proc WHERE proname = 'pg_sleep'").fetchone()[0]
            assert safe == "s", "pg_sleep must be parallel safe for this test's parallel worker"
            name = "debug_parallel_query" if p.execute(
                "SELECT count(*) FROM pg_settings WHERE name = 'debug_parallel_query'").fetchone()[0] else "force_parallel_mode"
            # The enrollments' events written (by whichever writer), and no dynamic writer left.
            for conn, f in ((b, fb), (cc, fc)):
                assert rows(conn, "factor_id = %s AND event = 'factor_enrolled'", f)
            deadline = time.time() + 15
            while p.execute("SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'mfa_auth audit writer'").fetchone()[0]:
                assert time.time() < deadline, "a dynamic writer stayed"
                time.sleep(0.1)

            def hold_a_slot():
                with c.connect() as p2:
                    p2.execute(f"SET {name} = on")
                    p2.execute("SELECT pg_sleep(20)")

            holder = threading.Thread(target=hold_a_slot)
            holder.start()
            try:
                deadline = time.time() + 10
                while not p.execute("SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'parallel worker'").fetchone()[0]:
                    assert time.time() < deadline, "no parallel worker started"
                    time.sleep(0.05)
                took = {}
                for conn, f, secret, db in ((b, fb, sb, "B"), (cc, fc, sc, "C")):
                    t0 = time.time()
                    cid = conn.execute("SELECT challenge_id FROM auth.create_challenge(%s, '10.0.0.1')", (f,)).fetchone()[0]
                    assert conn.execute("SELECT auth.verify_challenge(%s, %s, '10.0.0.1')",
                                        (cid, wrong_codes(secret, 1)[0])).fetchone()[0] is False
                    found = rows(conn, "factor_id = %s AND event = 'verification'", f, timeout=8)
                    took[db] = (round(time.time() - t0, 1), [(r[0], r[1]) for r in found])
                held = p.execute("SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'parallel worker'").fetchone()[0]
                writers = p.execute("SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'mfa_auth audit writer'").fetchone()[0]
            finally:
                holder.join()
            print(f"\n  with the one free worker slot held by a parallel worker ({held} running at the end, {writers} "
                  f"dynamic writers): (seconds, rows) per database {took}")
            assert held == 1 and writers == 0, "the test did not hold the slot"
            assert took["B"][1] == [("verification", "failure")] and took["C"][1] == [("verification", "failure")]
    finally:
        c.stop()
