"""Failover under load with a real HA manager: pg_auto_failover (Debian's
postgresql-15-auto-failover and pg-auto-failover-cli), a monitor and two nodes on loopback,
each with mfa_auth preloaded and the same key file, synchronous replication (the default of a
two-node formation).

While clients verify through the gateway path (request.jwt.claims as PostgREST sets them) and
an attacker guesses against a victim factor, the primary's keeper and postmaster are killed
with SIGKILL; pg_auto_failover promotes the secondary, and the clients reconnect through a
multi-host connection string (target_session_attrs=read-write). Then it checks, and prints as
figures, what must hold on the new primary; the old primary rejoins as a secondary and a second
failover goes back. Run by tests/failover/run.sh; prints "failover: P passed, F failed" last."""
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid

import psycopg
import pyotp

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "e2e"))
from conftest import PG_BIN, _free_port, keep_log, write_key_file  # noqa: E402

DB = "ha_app"
GATEWAY = "ha_gateway"
CLIENTS = 4
FACTORS_PER_CLIENT = 300
RESULTS = {"passed": 0, "failed": 0}


def figure(what, figures):
    """A measurement the issue asks to print, not (yet) a pass/fail check."""
    print(f"  fig  {what}: {figures}", flush=True)


def check(what, ok, figures=""):
    RESULTS["passed" if ok else "failed"] += 1
    print(f"  {'ok  ' if ok else 'FAIL'} {what}{': ' + figures if figures else ''}", flush=True)


def as_postgres(args, **kw):
    if os.geteuid() == 0:
        args = ["runuser", "-u", "postgres", "--"] + args
    return subprocess.run(args, check=True, capture_output=True, text=True, **kw)


class Formation:
    """A pg_auto_failover monitor and two nodes, each run by `pg_autoctl run` in the background."""

    def __init__(self):
        self.root = tempfile.mkdtemp(prefix="mfa_auth-failover.")
        os.chmod(self.root, 0o755)
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres", "postgres")
        self.keys = write_key_file(os.path.join(self.root, "mfa_auth.keys"))
        self.monitor_port = _free_port()
        self.ports = {"a": _free_port(), "b": _free_port()}
        self.runs = {}
        self.env = {**{k: v for k, v in os.environ.items() if not k.startswith("RUST_")},
                    "PATH": f"{PG_BIN}:{os.environ['PATH']}", "PG_CONFIG": f"{PG_BIN}/pg_config"}

    def data(self, name):
        return os.path.join(self.root, name)

    def monitor_uri(self):
        return f"postgres://autoctl_node@127.0.0.1:{self.monitor_port}/pg_auto_failover?sslmode=disable"

    def autoctl(self, *args):
        return as_postgres(["pg_autoctl", *args], env=self.env, cwd=self.root)

    def run(self, name):
        log = open(os.path.join(self.root, f"{name}-autoctl.log"), "a")
        args = ["pg_autoctl", "run", "--pgdata", self.data(name)]
        if os.geteuid() == 0:
            args = ["runuser", "-u", "postgres", "--"] + args
        self.runs[name] = subprocess.Popen(args, env=self.env, cwd=self.root, stdout=log, stderr=subprocess.STDOUT,
                                           start_new_session=True)

    def create(self):
        self.autoctl("create", "monitor", "--pgdata", self.data("monitor"), "--pgport", str(self.monitor_port),
                     "--hostname", "127.0.0.1", "--auth", "trust", "--no-ssl", "--pgctl", f"{PG_BIN}/pg_ctl")
        self.run("monitor")
        self.wait_sql(self.monitor_port, "pg_auto_failover", "SELECT 1")
        for name in ("a", "b"):
            self.autoctl("create", "postgres", "--pgdata", self.data(name), "--pgport", str(self.ports[name]),
                         "--hostname", "127.0.0.1", "--name", f"node_{name}", "--auth", "trust", "--no-ssl",
                         "--pgctl", f"{PG_BIN}/pg_ctl", "--monitor", self.monitor_uri(), "--dbname", DB)
            if name == "a":
                # mfa_auth preloaded with the key file; node b copies this postgresql.conf with
                # its base backup.
                with open(os.path.join(self.data("a"), "postgresql.conf"), "a") as f:
                    f.write(f"\nshared_preload_libraries = 'mfa_auth'\nmfa_auth.encryption_keys_file = '{self.keys}'\n")
            self.run(name)
            self.wait_states({"a": "single"} if name == "a" else {"a": "primary", "b": "secondary"}, timeout=120)

    def states(self):
        with psycopg.connect(host="127.0.0.1", port=self.monitor_port, user="autoctl_node", dbname="pg_auto_failover",
                             autocommit=True, connect_timeout=3) as m:
            rows = m.execute("SELECT nodename, reportedstate::text, goalstate::text FROM pgautofailover.node").fetchall()
        return {n.removeprefix("node_"): (r, g) for n, r, g in rows}

    def wait_states(self, want, timeout=90):
        """Waits until every node of `want` reports (and has as goal) its state; returns the seconds."""
        t0 = time.time()
        last = None
        while time.time() - t0 < timeout:
            try:
                last = self.states()
                if all(last.get(n) == (s, s) for n, s in want.items()):
                    return time.time() - t0
            except psycopg.Error:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"states {want} not reached in {timeout} s: {last}")

    def wait_sql(self, port, db, sql, timeout=60):
        t0 = time.time()
        while True:
            try:
                with psycopg.connect(host="127.0.0.1", port=port, user="postgres", dbname=db, autocommit=True,
                                     connect_timeout=2) as c:
                    return c.execute(sql).fetchone()
            except psycopg.Error:
                if time.time() - t0 > timeout:
                    raise
                time.sleep(0.2)

    def primary(self):
        return next(n for n, (r, _) in self.states().items() if r in ("primary", "single", "wait_primary"))

    def connect(self, name, **kw):
        return psycopg.connect(host="127.0.0.1", port=self.ports[name], user="postgres", dbname=DB, autocommit=True, **kw)

    def multi_host(self):
        return (f"host=127.0.0.1,127.0.0.1 port={self.ports['a']},{self.ports['b']} dbname={DB} user={GATEWAY} "
                "target_session_attrs=read-write connect_timeout=2")

    def postmaster_pid(self, name):
        with open(os.path.join(self.data(name), "postmaster.pid")) as f:
            return int(f.readline())

    def crash(self, name):
        """The node's keeper (so nothing restarts its server) and its postmaster, SIGKILL."""
        pid = self.postmaster_pid(name)
        os.killpg(self.runs[name].pid, signal.SIGKILL)
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.runs[name].wait()

    def logs(self, name):
        d = os.path.join(self.data(name), "log")
        return [os.path.join(d, f) for f in sorted(os.listdir(d))] if os.path.isdir(d) else []

    def stop(self):
        for name, p in self.runs.items():
            if p.poll() is None:
                try:
                    self.autoctl("stop", "--pgdata", self.data(name), "--immediate")
                except subprocess.CalledProcessError:
                    pass
                try:
                    p.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    os.killpg(p.pid, signal.SIGKILL)
        for name in ("monitor", "a", "b"):
            for i, path in enumerate(self.logs(name)):
                keep_log(path, f"failover-{name}-{i}-{os.path.basename(self.root)}")
        shutil.rmtree(self.root, ignore_errors=True)


class Load:
    """CLIENTS gateway clients verifying TOTP codes and recovery codes, each verification's
    acknowledgement (true returned and COMMIT returned) logged; and an attacker guessing."""

    def __init__(self, formation, users, round_):
        self.f, self.users, self.round = formation, users, round_
        self.acked, self.errors, self.lock = [], [], threading.Lock()
        self.first_after = {}  # client -> seconds from the kill to its first acknowledgement after it
        self.kill_time = None
        self.new_port = None  # the node the HA manager promotes
        self.threads = []
        self.attacker = None

    def session(self):
        while True:
            try:
                return psycopg.connect(self.f.multi_host(), autocommit=True)
            except psycopg.Error:
                time.sleep(0.05)

    def client(self, i):
        conn, n = self.session(), 0
        factors = self.users[i]["factors"]
        # This failover's recovery-code user (the check after it locks the set with used codes).
        rec_user, codes = self.users[i]["recovery"][self.round]
        used = self.users[i].setdefault("used", {})  # factor -> the TOTP step it last verified
        while not self.stop.is_set():
            step = int(time.time() // 30)
            # A factor accepts each step once: the next factor that has not verified this step.
            free = [k for k in range(len(factors)) if used.get(factors[k][0], -1) < step]
            if not free:
                time.sleep(0.2)
                continue
            fid, secret, user = factors[free[0]]
            n += 1
            sess = str(uuid.uuid4())
            use_code = bool(codes) and n % 10 == 0
            if use_code:
                user = rec_user
            claims = json.dumps({"sub": user, "session_id": sess, "role": GATEWAY})
            try:
                with conn.transaction():
                    conn.execute("SELECT set_config('request.jwt.claims', %s, true)", (claims,))
                    if use_code:
                        code = codes[0]
                        ok = conn.execute("SELECT auth.verify_recovery_code(%s, %s, NULL, %s)",
                                          (user, code, sess)).fetchone()[0]
                        ch = None
                    else:
                        ch = conn.execute("SELECT challenge_id FROM auth.create_challenge(%s, '10.0.0.1')",
                                          (fid,)).fetchone()[0]
                        code = pyotp.TOTP(secret).now()
                        ok = conn.execute("SELECT auth.verify_challenge(%s, %s, '10.0.0.1', %s)",
                                          (ch, code, sess)).fetchone()[0]
                # COMMIT returned: acknowledged.
                if not use_code:
                    used[fid] = step
                if ok:
                    if use_code:
                        codes.pop(0)
                    with self.lock:
                        self.acked.append({"kind": "recovery" if use_code else "totp", "factor": fid, "user": user,
                                           "challenge": str(ch) if ch else None, "session": sess, "code": code,
                                           "at": time.time(), "port": conn.info.port})
                        if self.kill_time and conn.info.port == self.new_port and i not in self.first_after:
                            self.first_after[i] = time.time() - self.kill_time
            except psycopg.Error as e:
                with self.lock:
                    self.errors.append((type(e).__name__, getattr(e, "sqlstate", None), time.time()))
                try:
                    conn.close()
                except psycopg.Error:
                    pass
                conn = self.session()
            time.sleep(0.02)
        conn.close()

    def start(self, attacker):
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self.client, args=(i,), daemon=True) for i in range(CLIENTS)]
        self.attacker = Attacker(self.f, attacker)
        self.threads.append(threading.Thread(target=self.attacker.run, daemon=True))
        for t in self.threads:
            t.start()

    def wait_for(self, what, cond, timeout):
        t0 = time.time()
        while not cond():
            if time.time() - t0 > timeout:
                raise RuntimeError(f"{what}: not reached in {timeout} s")
            time.sleep(0.05)
        return time.time() - t0

    def finish(self):
        self.stop.set()
        for t in self.threads:
            t.join()


class Attacker:
    """Rolled-back wrong guesses while the load runs: against the victim's TOTP factor until it
    locks (53400), against the victim's recovery codes until they lock, and 3 against a second
    factor (a count short of the lock)."""

    def __init__(self, formation, targets):
        self.f, self.t = formation, targets
        self.evaluated = {}
        self.done = threading.Event()

    def run(self):
        with psycopg.connect(self.f.multi_host().replace(f"user={GATEWAY}", "user=postgres"), autocommit=True) as c:
            self.evaluated["victim"] = attack(c, self.t["victim"], limit=None)
            self.evaluated["recovery"] = attack_recovery(c, self.t["recovery"][0], limit=None)
            self.evaluated["partial"] = attack(c, self.t["partial"], limit=PARTIAL)
        self.done.set()


def recovery_codes(c, fid, secret, user, n):
    """`n` recovery codes for `user`, generated in an aal2 session it reaches with TOTP factor
    `fid` (the previous step's code: the load's verifications use the current one)."""
    session = str(uuid.uuid4())
    ch = c.execute("SELECT challenge_id FROM auth.create_challenge(%s, '10.0.0.1')", (fid,)).fetchone()[0]
    assert c.execute("SELECT auth.verify_challenge(%s, %s, NULL, %s)",
                     (ch, pyotp.TOTP(secret).at(time.time() - 30), session)).fetchone()[0]
    return [r[0] for r in c.execute("SELECT * FROM auth.generate_recovery_codes(%s, %s, %s)", (user, session, n))]


def setup(f):
    """The extension, the gateway role, and per client FACTORS_PER_CLIENT users with a verified
    TOTP factor each, two of them (one per failover) with 16 recovery codes; per failover the
    attacker's targets."""
    with f.connect("a") as c:
        c.execute("CREATE EXTENSION mfa_auth")
        c.execute(f"CREATE ROLE {GATEWAY} LOGIN")
        c.execute(f"GRANT USAGE ON SCHEMA auth TO {GATEWAY}")
        c.execute(f"GRANT EXECUTE ON FUNCTION auth.create_challenge(uuid, inet), auth.verify_challenge(uuid, text, inet, uuid), "
                  f"auth.verify_recovery_code(uuid, text, inet, uuid) TO {GATEWAY}")
        c.execute(f"ALTER DATABASE {DB} SET mfa_auth.jwt_claims_roles = '{GATEWAY}'")
        users = []
        for _ in range(CLIENTS):
            factors = []
            # (One factor per user: a user has 10 factors at most.)
            for _k in range(FACTORS_PER_CLIENT):
                u = str(uuid.uuid4())
                fid, secret = c.execute("SELECT factor_id, secret FROM auth.enroll_totp(%s)", (u,)).fetchone()[:2]
                c.execute("UPDATE auth.mfa_factors SET status = 'verified' WHERE id = %s", (fid,))
                factors.append((str(fid), secret, u))
            recovery = [(user, recovery_codes(c, fid, secret, user, 16)) for fid, secret, user in factors[:2]]
            users.append({"factors": factors, "recovery": recovery})
        # Per failover, the attacker's targets: a victim factor, a second one it counts 3
        # failures against, and a victim's recovery codes (a user of their own).
        rounds = []
        for _round in range(2):
            targets = {}
            for name in ("victim", "partial"):
                fid, secret = c.execute("SELECT factor_id, secret FROM auth.enroll_totp(gen_random_uuid())").fetchone()[:2]
                c.execute("UPDATE auth.mfa_factors SET status = 'verified' WHERE id = %s", (fid,))
                targets[name] = (str(fid), secret)
            ruser = str(uuid.uuid4())
            rfid, rsecret = c.execute("SELECT factor_id, secret FROM auth.enroll_totp(%s)", (ruser,)).fetchone()[:2]
            rcodes = recovery_codes(c, rfid, rsecret, ruser, 10)
            rfactor = c.execute("SELECT mfa_factor_id FROM auth.mfa_recovery_code_sets WHERE user_id = %s",
                                (ruser,)).fetchone()[0]
            targets["recovery"] = (ruser, rcodes, str(rfactor))
            rounds.append(targets)
    return users, rounds


PARTIAL = 3  # rolled-back failures against the second factor: a count short of the lock


def wrong_guesses(secret):
    right = {pyotp.TOTP(secret).at(time.time() + 30 * k) for k in range(-2, 3)}
    return (g for g in (f"{i:06d}" for i in range(1_000_000)) if g not in right)


def attack(c, factor, limit):
    """Wrong guesses against TOTP `factor` (id, secret), each in a transaction rolled back (the
    attacker's best: no committed count), until it is locked (53400) or `limit` were made: how
    many were evaluated (returned false)."""
    fid, secret = factor
    guesses, evaluated = wrong_guesses(secret), 0
    for _ in range(limit or 200):
        try:
            ch = c.execute("SELECT challenge_id FROM auth.create_challenge(%s, '10.0.0.1')", (fid,)).fetchone()[0]
            with c.transaction(force_rollback=True):
                ok = c.execute("SELECT auth.verify_challenge(%s, %s)", (ch, next(guesses))).fetchone()[0]
            assert not ok
            evaluated += 1
        except psycopg.errors.ConfigurationLimitExceeded:
            return evaluated
    return evaluated


def attack_recovery(c, user, limit):
    evaluated = 0
    for _ in range(limit or 200):
        try:
            with c.transaction(force_rollback=True):
                assert not c.execute("SELECT auth.verify_recovery_code(%s, 'aaaa-bbbb-cccc-dddd')", (user,)).fetchone()[0]
            evaluated += 1
        except psycopg.errors.ConfigurationLimitExceeded:
            return evaluated
    return evaluated


def verify_after(f, new, load, targets):
    """The checks of the issue on the new primary `new`."""
    kill = load.kill_time
    acked = list(load.acked)
    before = [a for a in acked if a["at"] < kill]
    with f.connect(new) as c:
        totp = [a for a in acked if a["kind"] == "totp"]
        missing_challenges = sum(1 for a in totp if not c.execute(
            "SELECT verified_at IS NOT NULL FROM auth.mfa_challenges WHERE id = %s", (a["challenge"],)).fetchone()[0])
        missing_claims = sum(1 for a in acked if c.execute(
            "SELECT count(*) FROM auth.mfa_verified_claims WHERE session_id = %s AND user_id = %s",
            (a["session"], a["user"])).fetchone()[0] == 0)
        check("acknowledged verifications missing on the new primary", missing_challenges == 0 and missing_claims == 0,
              f"{len(acked)} acknowledged ({len(before)} before the kill, {len(totp)} TOTP, "
              f"{len(acked) - len(totp)} recovery codes): {missing_challenges} challenges without verified_at, "
              f"{missing_claims} without their claim")
        # Replay across the switch: codes accepted before the kill, on a new challenge of their
        # factor, and their own challenges again.
        old_totp = [a for a in before if a["kind"] == "totp"][-50:]
        replays = twice = 0
        for a in old_totp:
            ch = c.execute("SELECT challenge_id FROM auth.create_challenge(%s, '10.0.0.1')", (a["factor"],)).fetchone()[0]
            replays += c.execute("SELECT auth.verify_challenge(%s, %s)", (ch, a["code"])).fetchone()[0]
            try:
                twice += c.execute("SELECT auth.verify_challenge(%s, %s)", (a["challenge"], a["code"])).fetchone()[0]
            except psycopg.errors.ObjectNotInPrerequisiteState:
                pass  # 55000: the challenge was already verified
        check("codes and challenges accepted before the failover and again after it", replays == 0 and twice == 0,
              f"{replays} of {len(old_totp)} codes on a new challenge, {twice} of {len(old_totp)} challenges again")
        rec = [a for a in before if a["kind"] == "recovery"]
        again = refused_locked = 0
        for a in rec:
            try:
                again += c.execute("SELECT auth.verify_recovery_code(%s, %s)", (a["user"], a["code"])).fetchone()[0]
            except psycopg.errors.ConfigurationLimitExceeded:
                refused_locked += 1  # the set locked after 5 of these wrong (used) codes
        check("recovery codes used before the failover and accepted again", again == 0,
              f"{again} of {len(rec)} ({len(rec) - refused_locked} returned false, then {refused_locked} refused: "
              "the set locked)")
        # The attacker's targets: their locks and counts, as the old primary left them.
        ev = load.attacker.evaluated
        after = {"victim": attack(c, targets["victim"], None),
                 "recovery": attack_recovery(c, targets["recovery"][0], None),
                 "partial": attack(c, targets["partial"], None)}
        limit = c.execute("SELECT setting::int FROM pg_settings WHERE name = 'mfa_auth.max_failed_attempts'").fetchone()[0]
        extra = after["victim"] + after["recovery"] + (after["partial"] - (limit - ev["partial"]))
        check("extra attempts the switch gave the attacker (rolled-back guesses evaluated on the new primary beyond the limit)",
              extra == 0 and ev["victim"] == ev["recovery"] == limit,
              f"{extra}: before the kill the attacker had {ev['victim']} guesses at the TOTP factor and "
              f"{ev['recovery']} at the recovery codes evaluated before each locked, {ev['partial']} at the second "
              f"factor; on the new primary {after['victim']} and {after['recovery']} evaluated before 53400 "
              f"(still locked), and {after['partial']} at the second factor (its {ev['partial']} kept)")
        # The audit trail: acknowledged successes and the attacker's failures against rows.
        rows = c.execute("SELECT count(*) FROM auth.mfa_audit_log WHERE event IN ('verification', "
                         "'recovery_code_verification') AND outcome = 'success' AND session_id = ANY(%s::uuid[])",
                         ([a["session"] for a in before],)).fetchone()[0]
        present = {r[0] for r in c.execute(
            "SELECT session_id::text FROM auth.mfa_audit_log WHERE outcome = 'success' AND session_id = ANY(%s::uuid[])",
            ([a["session"] for a in before],))}
        lost = [a for a in before if a["session"] not in present]
        oldest = max((kill - a["at"] for a in lost), default=0.0)
        recent = sum(1 for a in before if a["at"] > kill - 1.0)
        factors = [targets["victim"][0], targets["partial"][0], targets["recovery"][2]]
        failures = c.execute("SELECT count(*) FROM auth.mfa_audit_log WHERE outcome = 'failure' AND factor_id = ANY(%s::uuid[]) "
                             "AND created_at < to_timestamp(%s)", (factors, kill)).fetchone()[0]
        guessed = ev["victim"] + ev["recovery"] + ev["partial"]
        check("audit rows of acknowledged verifications (a crash loses at most the last ~100 ms the writer had not committed)",
              oldest <= 1.0 and failures == guessed,
              f"successes: {rows} of {len(before)} in the trail, {len(lost)} lost, the oldest of them "
              f"{oldest * 1000:.0f} ms before the kill ({recent} acknowledged in the last second); the attacker's "
              f"failures: {failures} of {guessed} in the trail")


def main():
    f = Formation()
    loads = []
    try:
        t0 = time.time()
        f.create()
        print(f"  formation: monitor :{f.monitor_port}, node_a :{f.ports['a']} primary, node_b :{f.ports['b']} "
              f"secondary, in {time.time() - t0:.1f} s", flush=True)
        with f.connect("a") as c:
            sync = c.execute("SHOW synchronous_standby_names").fetchone()[0]
        check("synchronous replication", sync not in ("", None), f"synchronous_standby_names = {sync!r}")
        users, rounds = setup(f)
        f.wait_sql(f.ports["b"], DB, "SELECT count(*) FROM auth.mfa_factors")
        for round_, (old, new) in enumerate((("a", "b"), ("b", "a")), start=1):
            print(f"== failover {round_}: {old} -> {new}", flush=True)
            # The load starts with a TOTP step (each factor verifies once per step); the kill
            # comes once the attacker is done and the clients have 400 acknowledgements, while
            # every client is still verifying.
            time.sleep(30 - time.time() % 30 + 0.3)
            load = Load(f, users, round_ - 1)
            loads.append(load)
            load.start(rounds[round_ - 1])
            load.wait_for("the attacker", load.attacker.done.is_set, 60)
            load.wait_for("400 acknowledged verifications", lambda ld=load: len(ld.acked) >= 400, 60)
            load.new_port = f.ports[new]
            load.kill_time = time.time()
            f.crash(old)
            # (With two nodes the new primary is wait_primary until the old one is back: there is
            # no standby to be synchronous with.)
            took = f.wait_states({new: "wait_primary"}, timeout=180)
            try:
                load.wait_for("a verification by every client on the new primary",
                              lambda ld=load: len(ld.first_after) == CLIENTS, 180)
            except RuntimeError:
                pass
            load.finish()
            times = sorted(load.first_after.values())
            check("every client verifies on the new primary", len(times) == CLIENTS,
                  f"{times[0]:.1f} s from the kill to the first acknowledged verification on node_{new} "
                  f"(the last of the {len(times)} clients {times[-1]:.1f} s); node_{new} promoted after {took:.1f} s; "
                  f"{len(load.acked)} acknowledged in all, {len(load.errors)} client errors (reconnects)"
                  if times else f"none of the {CLIENTS} clients in 180 s")
            verify_after(f, new, load, rounds[round_ - 1])
            # The old primary rejoins as a secondary (pg_rewind by its keeper).
            f.run(old)
            back = f.wait_states({new: "primary", old: "secondary"}, timeout=180)
            figure(f"node_{old} rejoined as a secondary", f"in {back:.1f} s")
    finally:
        for load in loads:
            load.stop.set()
        f.stop()
    print(f"failover: {RESULTS['passed']} passed, {RESULTS['failed']} failed")
    return 0 if RESULTS["failed"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
