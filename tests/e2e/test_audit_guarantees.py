"""What the audit trail guarantees when something stands in its way (found by a review of 0.3.0),
on a preloaded cluster of its own with a key file and prepared transactions enabled:

- a prepared transaction's events are rows only if it commits (COMMIT PREPARED), none after
  ROLLBACK PREPARED (0.3.0 wrote them at PREPARE);
- events that find no room are counted as lost in their own database, by kind and outcome
  (0.3.0: one global count, written into whichever database's writer ran next);
- one transaction holds at most PENDING_CAP events for its commit, the rest counted (0.3.0:
  unbounded, 5 MB for 10 000 events, and they overflowed the queue);
- a clean restart keeps what was queued (0.3.0: lost, no row, no count), and a writer that a
  lock holds up does not hold up the shutdown;
- with every other worker slot taken (any role can do that with parallel query), the reserved
  writer still writes the trail (0.3.0: the events waited for an unrelated event, or were lost).

The lock that stops a database's writer is held by a prepared transaction, which outlives the
session and a restart: the one way to make events wait that does not depend on timing."""
import os
import threading
import time
import uuid

import psycopg
import pytest

from conftest import keyed_cluster, wrong_codes

PENDING_CAP = 1024      # src/audit.rs
CAPACITY = 1024         # src/audit.rs: the shared queue


@pytest.fixture(scope="module")
def cluster():
    with keyed_cluster("mfa_auth-guarantees-", "max_prepared_transactions=4", "mfa_auth.max_failed_attempts=100") as c:
        c.databases = []
        yield c


def new_database(cluster):
    name = "g_" + uuid.uuid4().hex[:8]
    with cluster.connect() as admin:
        admin.execute(f"CREATE DATABASE {name}")
    with cluster.connect(dbname=name) as d:
        d.execute("CREATE EXTENSION mfa_auth")
    return name


def rows(cluster, db, where, *args, wait_for=1, timeout=10.0):
    deadline = time.time() + timeout
    with cluster.connect(dbname=db) as c:
        while True:
            found = c.execute(f"SELECT event, outcome, payload FROM auth.mfa_audit_log WHERE {where} ORDER BY created_at, id",
                              args).fetchall()
            if len(found) >= wait_for or time.time() > deadline:
                return found
            time.sleep(0.1)


def hold_the_trail(cluster, db):
    """A prepared transaction that holds an ACCESS EXCLUSIVE lock on the database's trail: its
    writer waits (and gives its batch up after lock_timeout, to try again) until it ends."""
    gid = "hold_" + uuid.uuid4().hex[:8]
    with cluster.connect(dbname=db) as h:
        h.execute("BEGIN")
        h.execute("LOCK TABLE auth.mfa_audit_log IN ACCESS EXCLUSIVE MODE")
        h.execute(f"PREPARE TRANSACTION '{gid}'")
    return gid


def release(cluster, db, gid):
    with cluster.connect(dbname=db) as h:
        h.execute(f"ROLLBACK PREPARED '{gid}'")


def failures(conn, n):
    fid, secret = conn.execute("SELECT factor_id, secret FROM auth.enroll_totp(gen_random_uuid())").fetchone()
    for code in wrong_codes(secret, n):
        cid = conn.execute("SELECT challenge_id FROM auth.create_challenge(%s, '192.0.2.9')", (fid,)).fetchone()[0]
        assert conn.execute("SELECT auth.verify_challenge(%s, %s, '192.0.2.9')", (cid, code)).fetchone()[0] is False
    return fid


def test_a_prepared_transaction_is_recorded_only_if_it_commits(cluster):
    db = new_database(cluster)
    outcome = {}
    for end in ("ROLLBACK PREPARED", "COMMIT PREPARED"):
        gid = "mfa_" + uuid.uuid4().hex[:8]
        with cluster.connect(dbname=db) as c:
            c.execute("BEGIN")
            fid, secret = c.execute("SELECT factor_id, secret FROM auth.enroll_totp(gen_random_uuid())").fetchone()
            cid = c.execute("SELECT challenge_id FROM auth.create_challenge(%s, '192.0.2.4')", (fid,)).fetchone()[0]
            import pyotp
            assert c.execute("SELECT auth.verify_challenge(%s, %s, '192.0.2.4')", (cid, pyotp.TOTP(secret).now())).fetchone()[0]
            c.execute(f"PREPARE TRANSACTION '{gid}'")
        time.sleep(0.5)   # the writer runs every 100 ms: anything queued at PREPARE is written by now
        before = rows(cluster, db, "factor_id = %s", fid, wait_for=1, timeout=0.5)
        with cluster.connect(dbname=db) as c:
            c.execute(f"{end} '{gid}'")
        after = rows(cluster, db, "factor_id = %s", fid, wait_for=4 if end == "COMMIT PREPARED" else 1, timeout=3)
        outcome[end] = (len(before), [(r[0], r[1]) for r in after])
    print(f"\n  rows of a prepared transaction's factor, before its end and after: {outcome}")
    assert outcome["ROLLBACK PREPARED"] == (0, [])
    assert outcome["COMMIT PREPARED"] == (0, [("factor_enrolled", None), ("challenge_created", None),
                                              ("verification", "success"), ("factor_verified", None)])


def test_losses_are_recorded_in_their_own_database_by_kind(cluster):
    """A flood in `flood` (its writer held up) fills the queue; three failures in `app` then
    find no room. `app` gets their count, by kind and outcome; `flood` gets its own."""
    flood, app = new_database(cluster), new_database(cluster)
    gid = hold_the_trail(cluster, flood)
    try:
        with cluster.connect(dbname=flood) as f:
            fid = f.execute("SELECT factor_id FROM auth.enroll_totp(gen_random_uuid())").fetchone()[0]
            # 1100 challenges in one transaction: 1024 wait for its commit, 76 over the cap.
            f.execute("SELECT count(*) FROM generate_series(1, 1100) g, LATERAL auth.create_challenge(%s, '192.0.2.8'::inet + 0 * g) c", (fid,))  # noqa: E501
        with cluster.connect(dbname=app) as a:
            victim = failures(a, 3)
        with cluster.connect(dbname=app) as c:
            status = c.execute("SELECT queued, lost FROM auth.audit_status()").fetchone()
    finally:
        release(cluster, flood, gid)
    app_lost = rows(cluster, app, "event = 'audit_events_lost'")
    app_failures = rows(cluster, app, "factor_id = %s AND event = 'verification'", victim, wait_for=0, timeout=0)
    flood_lost = rows(cluster, flood, "event = 'audit_events_lost'", wait_for=1, timeout=20)
    flood_written = rows(cluster, flood, "factor_id = %s AND event = 'challenge_created'", fid, wait_for=1, timeout=20)
    kinds = {}
    for r in app_lost:   # one row per kind each time the writer found losses: summed here
        key = (r[2]["traits"]["lost_event"], r[2]["traits"].get("lost_outcome"))
        kinds[key] = kinds.get(key, 0) + r[2]["traits"]["events"]
    lost_kinds = sorted((k[0], k[1] or "", n) for k, n in kinds.items())
    flood_count = sum(r[2]["traits"]["events"] for r in flood_lost)
    print(f"\n  with the queue full (queued, lost) = {status}: app recorded {len(app_failures)} failures and the loss "
          f"{lost_kinds}; flood wrote {len(flood_written)} challenge_created rows and counted {flood_count} lost "
          f"({[(r[2]['traits']['lost_event'], r[2]['traits']['events']) for r in flood_lost]})")
    assert status[0] >= CAPACITY - 8, "the flood did not fill the queue"
    assert len(app_failures) + kinds.get(("verification", "failure"), 0) == 3
    assert len(app_failures) < 3, "the queue had room: nothing was lost"
    assert all(r[2]["traits"]["lost_event"] == "challenge_created" for r in flood_lost)
    assert len(flood_written) + flood_count == 1100


def test_one_transaction_holds_at_most_the_cap_and_counts_the_rest(cluster):
    """10 000 challenges in one transaction: at most PENDING_CAP events wait for its commit,
    the rest are counted, and every one of the 10 000 is a row or a count. The memory the
    events take is the difference to the same transaction with the trail off."""
    db = new_database(cluster)
    make = "SELECT count(*) FROM generate_series(1, %s) g, LATERAL auth.create_challenge(%s, '192.0.2.8'::inet + 0 * g) c"
    growth = {}
    with cluster.connect(dbname=db) as c:
        fid = c.execute("SELECT factor_id FROM auth.enroll_totp(gen_random_uuid())").fetchone()[0]
        pid = c.info.backend_pid

        def rss():
            with open(f"/proc/{pid}/status") as f:
                return next(int(ln.split()[1]) for ln in f if ln.startswith("VmRSS:"))
        c.execute(make, (100, fid))
        for audit in ("off", "on"):
            c.execute(f"SET mfa_auth.audit = {audit}")
            c.execute("BEGIN")
            r0 = rss()
            c.execute(make, (10000, fid))
            growth[audit] = rss() - r0
            c.execute("COMMIT")
    deadline = time.time() + 20
    while True:
        written = len(rows(cluster, db, "factor_id = %s AND event = 'challenge_created'", fid, wait_for=0, timeout=0))
        lost = rows(cluster, db, "event = 'audit_events_lost'", wait_for=0, timeout=0)
        counted = sum(r[2]["traits"]["events"] for r in lost)
        if written + counted >= 10100 or time.time() > deadline:
            break
        time.sleep(0.2)
    print(f"\n  one transaction of 10 000 challenges: backend RSS +{growth['off']} kB with the trail off, "
          f"+{growth['on']} kB with it on; {written - 100} rows written, {counted} counted lost "
          f"{[(r[2]['traits']['lost_event'], r[2]['traits']['events']) for r in lost]}")
    assert written - 100 <= PENDING_CAP
    assert written - 100 + counted == 10000
    assert all(r[2]["traits"]["lost_event"] == "challenge_created" for r in lost)
    assert growth["on"] - growth["off"] < 1024, "the events took more than PENDING_CAP x 344 bytes and change"


def test_a_clean_restart_keeps_what_was_queued(cluster):
    """Five failures wait (their writer is held up by the lock); a fast restart. The shutdown
    does not wait for the lock (the writer gives up after lock_timeout), the events are saved
    in the data directory, and written after the start, once the lock is gone."""
    db = new_database(cluster)
    gid = hold_the_trail(cluster, db)
    with cluster.connect(dbname=db) as c:
        fid = failures(c, 5)
    time.sleep(0.5)
    t0 = time.time()
    done = cluster.pg_ctl("-m", "fast", "-w", "-t", "60", "restart")
    took = time.time() - t0
    assert done.returncode == 0, done.stdout + done.stderr
    log = open(os.path.join(cluster.root, "log"), errors="replace").read()
    saved = [ln for ln in log.splitlines() if "saved for the next start" in ln or "are queued again" in ln]
    # (The trail cannot be read while the lock is held: the queue's count says what waits.)
    release(cluster, db, gid)
    after = rows(cluster, db, "factor_id = %s AND event = 'verification'", fid, wait_for=5, timeout=20)
    print(f"\n  fast restart with 5 failures queued behind a lock: {took:.1f} s; {len(after)} rows once the lock "
          f"went; server log: {[ln.split('LOG:')[-1].strip() for ln in saved]}")
    assert any("saved for the next start" in ln for ln in saved) and any("are queued again" in ln for ln in saved)
    assert [(r[0], r[1]) for r in after] == [("verification", "failure")] * 5
    assert took < 30


def workers_launched(conn, name):
    """How many parallel workers a forced parallel query gets now: 0 when no worker slot is free."""
    conn.execute(f"SET {name} = on")
    plan = conn.execute("EXPLAIN (ANALYZE, FORMAT JSON) SELECT 1").fetchone()[0]
    return plan[0]["Plan"]["Workers Launched"]


def test_the_reserved_writer_writes_while_every_other_slot_is_taken(cluster):
    """Sessions with forced parallel query hold every worker slot that the server's own workers
    (the logical replication launcher, the reserved writer) leave free (max_worker_processes =
    8 by default). A victim's three failures are written while they sleep."""
    db = new_database(cluster)
    with cluster.connect() as p:
        name = "debug_parallel_query" if p.execute(
            "SELECT count(*) FROM pg_settings WHERE name = 'debug_parallel_query'").fetchone()[0] else "force_parallel_mode"
        slots = int(p.execute("SHOW max_worker_processes").fetchone()[0])
        # No writer left over from another test.
        deadline = time.time() + 15
        while p.execute("SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'mfa_auth audit writer'").fetchone()[0]:
            assert time.time() < deadline
            time.sleep(0.1)

    def hold():
        with cluster.connect() as h:
            h.execute(f"SET {name} = on")
            h.execute("SET max_parallel_workers_per_gather = 1")
            # (Long enough for every holder to start on a loaded machine and for the victim's
            # part below: the holders must still run while its failures are written.)
            h.execute("SELECT pg_sleep(25)")
    holders = [threading.Thread(target=hold) for _ in range(slots)]
    for t in holders:
        t.start()
    try:
        with cluster.connect() as p:
            deadline = time.time() + 12
            while True:
                free = workers_launched(p, name)
                if free == 0 or time.time() > deadline:
                    break
                # A slot freed after the holders started (a writer of an earlier test that went
                # idle and exited) is taken by one more holder (seen: 1 slot free for 12 s).
                if len(holders) < 2 * slots and time.time() > deadline - 10:
                    holders.append(threading.Thread(target=hold))
                    holders[-1].start()
                time.sleep(0.2)
            busy = p.execute("SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'parallel worker'").fetchone()[0]
        with cluster.connect(dbname=db) as v:
            t0 = time.time()
            fid = failures(v, 3)
        found = rows(cluster, db, "factor_id = %s AND event = 'verification'", fid, wait_for=3, timeout=4)
        took = time.time() - t0
        with cluster.connect() as p:
            still = p.execute("SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'parallel worker'").fetchone()[0]
            free_after = workers_launched(p, name)
            writers = p.execute("SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'mfa_auth audit writer'").fetchone()[0]
    finally:
        for t in holders:
            t.join()
    print(f"\n  {busy} parallel workers took the free worker slots (of {slots}; a forced parallel query then got {free} "
          f"workers); the victim's failures: "
          f"{len(found)} of 3 written in {took:.1f} s, with {still} parallel workers still running, "
          f"{free_after} workers for a forced parallel query then, and {writers} dynamic writers")
    assert free == 0 and busy > 0, "the test did not take every slot"
    assert len(found) == 3 and free_after == 0 and writers == 0


def test_an_immediate_shutdown_with_the_queue_lock_held_is_not_a_panic():
    """An immediate shutdown kills every process with SIGQUIT, wherever it is: one that was
    pushing an event dies holding the queue's lock. The postmaster, which then saves the queue
    at its exit (it exits with code 0 after an immediate shutdown too), has no PGPROC to wait
    with: 0.4.0 before this PANICked there ("cannot wait without a PGPROC structure") and left
    its postmaster.pid behind. A backend takes the lock through gdb and sleeps, the death of a
    pusher made certain."""
    import shutil as sh
    import subprocess as sp
    gdb = sh.which("gdb")
    assert gdb, "gdb is installed by scripts/prereqs.sh"
    with keyed_cluster("mfa_auth-queue-lock-") as c:
        with c.connect() as admin:
            admin.execute("CREATE EXTENSION mfa_auth")
        sleeper = c.connect()
        pid = sleeper.execute("SELECT pg_backend_pid()").fetchone()[0]
        def sleep():
            try:
                sleeper.execute("SELECT pg_sleep(60)")
            except psycopg.OperationalError:
                pass  # ended by the stop
        threading.Thread(target=sleep, daemon=True).start()
        time.sleep(0.5)
        took = sp.run([gdb, "-p", str(pid), "-batch", "-ex",
                       'print (int) LWLockAcquire((void *) GetNamedLWLockTranche("mfa_auth_audit"), 0)'],
                      capture_output=True, text=True, timeout=60)
        assert "$1 = 1" in took.stdout, took.stdout + took.stderr  # acquired, without waiting
        done = c.pg_ctl("-m", "immediate", "-w", "-t", "30", "stop")
        log = open(os.path.join(c.root, "log"), errors="replace").read()
        pid_file_left = os.path.exists(os.path.join(c.data, "postmaster.pid"))
        lines = [ln.split("LOG:")[-1].strip() for ln in log.splitlines() if "mfa_auth: " in ln and "queue" in ln]
        print(f"\n  immediate stop with a backend holding the queue's lock: pg_ctl rc {done.returncode}, "
              f"PANICs {log.count('PANIC')}, postmaster.pid left {pid_file_left}; server log: {lines}")
        assert done.returncode == 0 and "PANIC" not in log and not pid_file_left
        assert any("not saved" in ln for ln in lines)
        # The next start is an ordinary one, and the trail works.
        started = c.pg_ctl("-w", "-o", c.opts, "start")
        assert started.returncode == 0, started.stdout + started.stderr
        with c.connect() as admin:
            fid = failures(admin, 1)
        after = rows(c, "postgres", "factor_id = %s AND event = 'verification'", fid, wait_for=1)
        assert [(r[0], r[1]) for r in after] == [("verification", "failure")]
