"""mfa_auth benchmarks: prints a table of figures and one `RATIO <name> <value> goal <op>
<target>` line per goal. Run through bench/run (which installs the release build and starts
a throwaway cluster); PGHOST/PGPORT/PGUSER point at it. `--quick`: smaller sizes, shorter runs."""
import datetime
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import psycopg

QUICK = "--quick" in sys.argv
HERE = os.path.dirname(os.path.abspath(__file__))
DB = "mfa_auth_bench"
RESULTS = []   # RATIO lines
REPORT = []    # everything printed, for RESULTS.md
MISSED = {}    # goal name -> why it is not reached, from this run's own figures


def out(line=""):
    print(line, flush=True)
    REPORT.append(line)


def ratio(name, value, op, target):
    line = f"RATIO {name} {value:.2f} goal {op} {target}"
    RESULTS.append(line)
    out(line)


def connect(db=DB, user=None, **kw):
    return psycopg.connect(host=os.environ["PGHOST"], port=os.environ["PGPORT"],
                           user=user or os.environ.get("PGUSER", "postgres"), dbname=db, autocommit=True, **kw)


def timed(conn, sql, params=None):
    t = time.perf_counter()
    conn.execute(sql, params).fetchall()
    return time.perf_counter() - t


def setup():
    with connect("postgres") as c:
        c.execute(f"DROP DATABASE IF EXISTS {DB} WITH (FORCE)")
        c.execute(f"CREATE DATABASE {DB}")
    with connect() as c:
        c.execute("CREATE EXTENSION mfa_auth")
        # bench/run preloads pg_stat_statements (track = all, track_planning): plan_reuse() reads it.
        c.execute("CREATE EXTENSION pg_stat_statements")
        c.execute(open(os.path.join(HERE, "plpgsql_totp.sql")).read())
        version = c.execute("SHOW server_version").fetchone()[0]
    return version


# --- 1. stateless TOTP check ---------------------------------------------------------------
def stateless():
    out("## 1. Stateless TOTP check (wrong code, window +-1 = 3 HMACs), one SELECT count(...) FROM generate_series(...)")
    n = 50_000 if QUICK else 200_000
    n_pl = n // 10
    secret = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"  # 20 bytes
    key = "\\x48656c6c6f21deadbeef48656c6c6f21deadbeef"
    queries = {
        "auth.totp_verify": (f"SELECT count(auth.totp_verify('{secret}', '000000', now(), 1)) FROM generate_series(1, {n}) g", n),
        "plpgsql over pgcrypto": (f"SELECT count(bench.totp_verify_plpgsql('{secret}', '000000', now(), 1)) FROM generate_series(1, {n_pl}) g", n_pl),
        "one pgcrypto hmac()": (f"SELECT count(hmac(int8send(g::bigint), '{key}'::bytea, 'sha1')) FROM generate_series(1, {n}) g", n),
        "empty loop (reference)": (f"SELECT count(g) FROM generate_series(1, {n}) g", n),
    }
    best = {k: float("inf") for k in queries}
    with connect() as c:
        for _ in range(5):  # alternate, keep each method's best run
            for name, (sql, rows) in queries.items():
                best[name] = min(best[name], timed(c, sql) / rows * 1e6)
    out(f"{'method':<28} {'us/call':>9}")
    for name, us in best.items():
        out(f"{name:<28} {us:>9.3f}")
    ratio("totp_vs_plpgsql", best["plpgsql over pgcrypto"] / best["auth.totp_verify"], ">=", 30)
    ratio("totp_vs_one_pgcrypto_hmac", best["auth.totp_verify"] / best["one pgcrypto hmac()"], "<=", 0.5)
    if best["auth.totp_verify"] / best["one pgcrypto hmac()"] > 0.5:
        MISSED["totp_vs_one_pgcrypto_hmac"] = (
            f"auth.totp_verify takes {best['auth.totp_verify']:.3f} us, one pgcrypto hmac() {best['one pgcrypto hmac()']:.3f} us, "
            f"and the query's loop alone {best['empty loop (reference)']:.3f} us of each. A check of window 1 needs 8 SHA-1 "
            "compressions (the key's inner and outer pads once, then 2 per step for 3 steps; computed side by side in "
            "3 batches with SHA-NI), one hmac() 4 in a row; "
            "section 8 gives their share of the call (SHA-NI compression, the floor of the work) and what else "
            f"remains (the pgrx call wrapper, decoding the base32 secret). The goal needs <= {best['one pgcrypto hmac()'] / 2:.3f} us.")
    out()


# --- helpers for pgbench runs ---------------------------------------------------------------
FLOW = """BEGIN;
SELECT factor_id, secret FROM bench.flow_factors WHERE n = (SELECT nextval('bench.flow_seq')) \\gset
SELECT challenge_id FROM auth.create_challenge(:factor_id::uuid, '127.0.0.1') \\gset
SELECT auth.verify_challenge(:challenge_id::uuid, auth.totp_generate(:secret), NULL, gen_random_uuid());
END;
"""
BARE = """BEGIN;
SELECT factor_id FROM bench.flow_factors WHERE n = (SELECT nextval('bench.flow_seq')) \\gset
INSERT INTO bench.bare_challenges (factor_id, ip_address) VALUES (:factor_id::uuid, '127.0.0.1');
UPDATE bench.bare_factors SET last_challenged_at = now() WHERE id = :factor_id::uuid;
END;
"""


def fresh_factors(c, count):
    """`count` new TOTP factors that no run has used, numbered from 1 for the pgbench scripts."""
    c.execute("DROP TABLE IF EXISTS bench.flow_factors")
    c.execute("DROP SEQUENCE IF EXISTS bench.flow_seq")
    c.execute("CREATE SEQUENCE bench.flow_seq")
    c.execute("""CREATE TABLE bench.flow_factors AS
                 SELECT g AS n, gen_random_uuid() AS factor_id, auth.generate_secret() AS secret
                   FROM generate_series(1, %s) g""", (count,))
    c.execute("ALTER TABLE bench.flow_factors ADD PRIMARY KEY (n)")
    c.execute("""INSERT INTO auth.mfa_factors (id, user_id, factor_type, secret, status)
                 SELECT factor_id, gen_random_uuid(), 'totp', secret, 'verified' FROM bench.flow_factors""")
    # Sealed with the cluster's key, as enrollment stores them (else each first verification
    # would also pay for sealing the plaintext row).
    c.execute("SELECT auth.rotate_secrets()")
    c.execute("DROP TABLE IF EXISTS bench.bare_factors")
    c.execute("CREATE TABLE bench.bare_factors AS SELECT factor_id AS id, now() AS last_challenged_at FROM bench.flow_factors")
    c.execute("ALTER TABLE bench.bare_factors ADD PRIMARY KEY (id)")
    c.execute("ANALYZE bench.flow_factors; ANALYZE bench.bare_factors; ANALYZE auth.mfa_factors")


def pgbench(script, seconds, clients=2, log_dir=None, per_statement=False, options=None):
    with tempfile.NamedTemporaryFile("w", suffix=".pgbench", delete=False) as f:
        f.write(script)
    args = ["pgbench", "-n", "-M", "prepared", "-c", str(clients), "-j", str(clients), "-T", str(seconds),
            "-f", f.name, "-h", os.environ["PGHOST"], "-p", os.environ["PGPORT"], "-U", os.environ.get("PGUSER", "postgres"), DB]
    if log_dir:
        args[1:1] = ["-l", "--log-prefix", os.path.join(log_dir, "tx")]
    if per_statement:
        args[1:1] = ["-r"]
    env = dict(os.environ, PGOPTIONS=options) if options else None
    r = subprocess.run(args, capture_output=True, text=True, cwd=log_dir or None, env=env)
    os.unlink(f.name)
    if r.returncode != 0 or "aborted" in r.stdout:
        raise SystemExit(f"pgbench failed:\n{r.stdout}\n{r.stderr}")
    if per_statement:
        lines = r.stdout.split("statement latencies in milliseconds")[-1].splitlines()[1:]
        for line in lines:
            if line.strip():
                out("    " + line.strip())
    tps = float(re.search(r"tps = ([0-9.]+)", r.stdout).group(1))
    tx = int(re.search(r"number of transactions actually processed: (\d+)", r.stdout).group(1))
    return tps, tx


def latencies(log_dir):
    lat = []
    for name in os.listdir(log_dir):
        if name.startswith("tx"):
            for line in open(os.path.join(log_dir, name)):
                lat.append(int(line.split()[2]))  # microseconds
    lat.sort()
    return lat[len(lat) // 2] / 1000, lat[int(len(lat) * 0.99)] / 1000, len(lat)


# --- 2. full flow vs bare writes and vs GoTrue's statements -----------------------------------
GOTRUE = open(os.path.join(HERE, "gotrue", "flow.pgbench")).read()


def gotrue_load(c):
    """Supabase Auth's tables (bench/gotrue/schema.sql) holding the same users and factors as
    bench.flow_factors: per user a row in users, an email identity, the verified TOTP factor (same
    id), a session at aal1 with its password claim, and a live refresh token."""
    c.execute(open(os.path.join(HERE, "gotrue", "schema.sql")).read())
    zero = "00000000-0000-0000-0000-000000000000"
    c.execute("""INSERT INTO gotrue_bench.pick (n, user_id, session_id, factor_id)
                 SELECT f.n, m.user_id, gen_random_uuid(), f.factor_id
                   FROM bench.flow_factors f JOIN auth.mfa_factors m ON m.id = f.factor_id""")
    c.execute(f"""INSERT INTO gotrue_bench.users (instance_id, id, aud, role, email, encrypted_password, email_confirmed_at,
                        confirmation_token, recovery_token, email_change_token_new, email_change, last_sign_in_at,
                        raw_app_meta_data, raw_user_meta_data, is_super_admin, created_at, updated_at)
                 SELECT '{zero}', user_id, 'authenticated', 'authenticated', 'u' || n || '@example.com',
                        '$2a$10$' || md5(n::text) || md5(user_id::text), now() - interval '30 days', '', '', '', '',
                        now() - interval '1 hour', '{{"provider": "email", "providers": ["email"]}}', '{{"email_verified": true}}',
                        NULL, now() - interval '30 days', now() - interval '1 hour'
                   FROM gotrue_bench.pick""")
    c.execute("""INSERT INTO gotrue_bench.identities (provider_id, user_id, identity_data, provider, last_sign_in_at, created_at, updated_at)
                 SELECT user_id::text, user_id, jsonb_build_object('sub', user_id::text, 'email', 'u' || n || '@example.com',
                        'email_verified', true, 'phone_verified', false), 'email', now() - interval '1 hour',
                        now() - interval '30 days', now() - interval '1 hour'
                   FROM gotrue_bench.pick""")
    c.execute("""INSERT INTO gotrue_bench.mfa_factors (id, user_id, friendly_name, factor_type, status, created_at, updated_at, secret)
                 SELECT p.factor_id, p.user_id, NULL, 'totp', 'verified', now() - interval '30 days', now() - interval '30 days', f.secret
                   FROM gotrue_bench.pick p JOIN bench.flow_factors f USING (n)""")
    c.execute("""INSERT INTO gotrue_bench.sessions (id, user_id, created_at, updated_at, aal, refreshed_at, user_agent, ip)
                 SELECT session_id, user_id, now() - interval '1 hour', now() - interval '1 hour', 'aal1',
                        now() - interval '1 hour', 'Mozilla/5.0 (X11; Linux x86_64)', '127.0.0.1'
                   FROM gotrue_bench.pick""")
    c.execute("""INSERT INTO gotrue_bench.mfa_amr_claims (session_id, created_at, updated_at, authentication_method, id)
                 SELECT session_id, now() - interval '1 hour', now() - interval '1 hour', 'password', gen_random_uuid()
                   FROM gotrue_bench.pick""")
    c.execute(f"""INSERT INTO gotrue_bench.refresh_tokens (instance_id, token, user_id, revoked, created_at, updated_at, parent, session_id)
                 SELECT '{zero}', md5(session_id::text), user_id::text, false, now() - interval '1 hour', now() - interval '1 hour',
                        NULL, session_id
                   FROM gotrue_bench.pick""")


# The same writes as the flow, as plain SQL from the client and nothing else: no TOTP check,
# no secret to open, no row locks, no refusals, no attempt counting, no SECURITY DEFINER
# call. A floor for what the flow must write (challenge and its three index entries, the
# factor stamped twice, the claim and its link), measured beside it. Its new ids lead with the
# time in milliseconds, as ours (UUIDv7) do, so that they too append to their primary keys.
V7 = ("encode(overlay(uuid_send(gen_random_uuid()) placing substring(int8send((extract(epoch FROM clock_timestamp())"
      " * 1000)::int8) FROM 3 FOR 6) FROM 1 FOR 6), 'hex')::uuid")
FLOOR = """BEGIN;
SELECT factor_id FROM bench.flow_factors WHERE n = (SELECT nextval('bench.flow_seq')) \\gset
WITH f AS (UPDATE auth.mfa_factors SET last_challenged_at = clock_timestamp() WHERE id = :factor_id::uuid RETURNING id, last_challenged_at), c AS (INSERT INTO auth.mfa_challenges (id, factor_id, created_at, ip_address) SELECT V7, id, last_challenged_at, '127.0.0.1' FROM f RETURNING id) SELECT id AS challenge_id FROM c \\gset
WITH c AS (UPDATE auth.mfa_challenges SET verified_at = clock_timestamp() WHERE id = :challenge_id::uuid RETURNING verified_at), f AS (UPDATE auth.mfa_factors SET status = 'verified', last_totp_step = 1, failed_attempts = 0, locked_until = NULL, updated_at = (SELECT verified_at FROM c) WHERE id = :factor_id::uuid), claim AS (INSERT INTO auth.mfa_amr_claims (id, session_id, authentication_method, created_at, updated_at) SELECT V7, gen_random_uuid(), 'totp', verified_at, verified_at FROM c RETURNING session_id) INSERT INTO auth.mfa_amr_claim_factors (session_id, authentication_method, factor_id) SELECT session_id, 'totp', :factor_id::uuid FROM claim;
END;
""".replace("V7", V7)


def flow():
    rounds, seconds = (2, 5) if QUICK else (3, 10)
    out(f"## 2. Full flow under pgbench (-M prepared, 2 clients, default durability): {rounds} rounds of {seconds} s per "
        "transaction, alternating, after one checkpoint and a warm-up; TPS is the median over the rounds")
    names = {"ours": "create_challenge + verify_challenge (right code, session)",
             "noaudit": "the same with mfa_auth.audit = off",
             "hook": "the same with a plpgsql verification hook (continue)",
             "floor": "the same writes as plain SQL, nothing else (FLOOR)",
             "bare": "bare INSERT + UPDATE by primary key",
             "gotrue": "Supabase Auth challenge + verify, 34 statements"}
    scripts = {"ours": FLOW, "noaudit": FLOW, "hook": FLOW, "floor": FLOOR, "bare": BARE, "gotrue": GOTRUE}
    # The audit trail is on by default (two events per transaction: the challenge and the
    # verification, written by the audit writer); "noaudit" is the same flow with it off.
    # "hook": mfa_auth.verification_hook set to a trivial plpgsql function that answers continue
    # (the function is called, as its owner, in a subtransaction, for every verification).
    options = {"noaudit": "-c mfa_auth.audit=off", "hook": "-c mfa_auth.verification_hook=bench.hook_continue"}
    tps = {k: [] for k in names}
    txs = {k: 0 for k in names}
    with connect() as c:
        fresh_factors(c, 100_000 if QUICK else 250_000)
        c.execute("""CREATE OR REPLACE FUNCTION bench.hook_continue(event jsonb) RETURNS jsonb LANGUAGE plpgsql AS $$
                     BEGIN
                       IF (event->>'failed_attempts')::int > 100 THEN
                         RETURN '{"decision": "reject", "message": "too many"}';
                       END IF;
                       RETURN '{"decision": "continue"}';
                     END $$""")
        c.execute("CREATE TABLE IF NOT EXISTS bench.bare_challenges (LIKE auth.mfa_challenges INCLUDING ALL)")
        c.execute("CREATE SEQUENCE IF NOT EXISTS bench.bare_seq")
        gotrue_load(c)
        for t in ("auth.mfa_factors", "bench.flow_factors", "bench.bare_factors", "gotrue_bench.users",
                  "gotrue_bench.identities", "gotrue_bench.mfa_factors", "gotrue_bench.sessions",
                  "gotrue_bench.mfa_amr_claims", "gotrue_bench.refresh_tokens", "gotrue_bench.pick"):
            c.execute(f"VACUUM ANALYZE {t}")
        verified_sql = """SELECT count(*) FROM auth.mfa_challenges c JOIN bench.flow_factors f USING (factor_id)
                           WHERE c.verified_at IS NOT NULL"""
        # One checkpoint after the load and a short warm-up of each transaction, then the rounds
        # back to back: the steady state a server is in between checkpoints. (A checkpoint before
        # every run would put each 10 s run inside the burst of full-page images that follows a
        # checkpoint, which weighs on a transaction by how many random index leaves it touches.)
        c.execute("CHECKPOINT")
        for name, script in scripts.items():
            if name == "bare":
                script = script.replace("bench.flow_seq", "bench.bare_seq")
            pgbench(script, 2, options=options.get(name))
        gotrue_sql = """SELECT
            (SELECT count(*) FROM gotrue_bench.mfa_challenges WHERE verified_at IS NOT NULL),
            (SELECT count(*) FROM gotrue_bench.sessions WHERE aal = 'aal2'),
            (SELECT count(*) FROM gotrue_bench.refresh_tokens WHERE revoked)"""
        g_before = c.execute(gotrue_sql).fetchone()
        for r in range(rounds):
            for name in (list(names) if r % 2 == 0 else list(names)[::-1]):
                script = scripts[name]
                if name == "bare":
                    script = script.replace("bench.flow_seq", "bench.bare_seq")
                    c.execute("SELECT setval('bench.bare_seq', 1, false)")
                if r == 0:
                    out(f"per-statement latency (ms), {name}:")
                before = c.execute(verified_sql).fetchone()[0]
                t, n = pgbench(script, seconds, per_statement=(r == 0), options=options.get(name))
                tps[name].append(t)
                txs[name] += n
                if name in ("ours", "noaudit", "hook", "floor"):
                    after = c.execute(verified_sql).fetchone()[0]
                    if after - before != n:
                        raise SystemExit(f"{name}: {n} transactions but {after - before} challenges verified")
        g_verified, g_aal2, g_revoked = (a - b for a, b in zip(c.execute(gotrue_sql).fetchone(), g_before, strict=True))
        # The audit rows of the flow's transactions, once the writer has caught up.
        deadline = time.time() + 10
        while c.execute("SELECT queued FROM auth.audit_status()").fetchone()[0] and time.time() < deadline:
            time.sleep(0.1)
        audited = c.execute("""SELECT count(*) FROM auth.mfa_audit_log a JOIN bench.flow_factors f USING (factor_id)
                                WHERE a.event = 'verification' AND a.outcome = 'success'""").fetchone()[0]
        lost = c.execute("SELECT count(*) FROM auth.mfa_audit_log WHERE event = 'audit_events_lost'").fetchone()[0]
    med = {k: statistics.median(v) for k, v in tps.items()}
    out(f"{'transaction':<58} {'TPS':>7}  {'per round':<22} {'transactions':>12}")
    for k, label in names.items():
        out(f"{label:<58} {med[k]:>7.0f}  {' '.join(f'{x:.0f}' for x in tps[k]):<22} {txs[k]:>12}")
    out(f"every transaction of ours and of the floor verified its challenge ({txs['ours']} and {txs['floor']})")
    out(f"Supabase Auth replay: {g_verified} challenges verified, {g_aal2} sessions at aal2, {g_revoked} refresh tokens revoked")
    if not g_verified == g_aal2 == g_revoked == txs["gotrue"]:
        raise SystemExit(f"the replay did not do its work: {txs['gotrue']} transactions, {g_verified}/{g_aal2}/{g_revoked}")
    out(f"audit trail: {audited} successful verifications recorded (of the {txs['ours']} timed with it on, plus the "
        f"warm-up's), {lost} 'audit_events_lost' rows; with it on / off: {med['ours'] / med['noaudit']:.2f}")
    if audited < txs["ours"]:
        raise SystemExit(f"the audit trail recorded {audited} verifications of {txs['ours']}")
    out(f"ours / floor {med['ours'] / med['floor']:.2f}; floor / bare {med['floor'] / med['bare']:.2f}")
    ratio("verify_vs_bare_writes", med["ours"] / med["bare"], ">=", 0.7)
    if med["ours"] / med["bare"] < 0.7:
        MISSED["verify_vs_bare_writes"] = (
            f"the writes the flow must make, as plain SQL with no check, no row lock and no crypto (FLOOR), reach "
            f"{med['floor'] / med['bare']:.2f} of the bare transaction's TPS, and ours is {med['ours'] / med['floor']:.2f} of that "
            f"floor: 0.7 would need ours at {0.7 / (med['floor'] / med['bare']):.2f} of the floor. What ours adds to the floor is "
            "in section 8: the two row locks that make a verification safe against a concurrent one (Heap/LOCK), the "
            "claim's upsert (HEAP_CONFIRM), the look-up statement, the refusal checks, opening the sealed secret and the "
            "SECURITY DEFINER calls.")
    ratio("verify_vs_gotrue_sql", med["ours"] / med["gotrue"], ">=", 2)
    ratio("audit_overhead", med["ours"] / med["noaudit"], ">=", 0.9)
    ratio("verify_with_hook", med["hook"] / med["ours"], ">=", 0.85)
    out()


# --- 3. scale ------------------------------------------------------------------------------------
def load(c, size):
    """`size` challenges over size/10 factors, and size/10 sessions' claims, set-based."""
    t = time.perf_counter()
    c.execute("TRUNCATE auth.mfa_challenges, auth.mfa_amr_claims, auth.mfa_amr_claim_factors")
    c.execute("DELETE FROM auth.mfa_factors")
    c.execute("SET session_replication_role = replica")  # consistent by construction: skip FK triggers
    factors = max(size // 10, 1)
    c.execute("""INSERT INTO auth.mfa_factors (id, user_id, factor_type, secret, status, created_at)
                 SELECT ('00000000-0000-4000-8000-' || lpad(to_hex(g), 12, '0'))::uuid, gen_random_uuid(), 'totp',
                        'JBSWY3DPEHPK3PXP', 'verified', now() - interval '30 days'
                   FROM generate_series(1, %s) g""", (factors,))
    c.execute("""INSERT INTO auth.mfa_challenges (id, factor_id, created_at, verified_at, ip_address)
                 SELECT gen_random_uuid(), ('00000000-0000-4000-8000-' || lpad(to_hex(1 + g %% %s), 12, '0'))::uuid,
                        now() - make_interval(secs => g * 0.25), now() - make_interval(secs => g * 0.25), '10.0.0.1'
                   FROM generate_series(1, %s) g""", (factors, size))
    c.execute("""INSERT INTO auth.mfa_amr_claims (session_id, authentication_method, created_at, updated_at)
                 SELECT gen_random_uuid(), 'totp', now() - interval '1 day', now() - interval '1 day'
                   FROM generate_series(1, %s) g""", (factors,))
    c.execute("SET session_replication_role = DEFAULT")
    c.execute("SELECT auth.rotate_secrets()")  # sealed, as enrollment stores them
    # Vacuumed, as a table of that size is in a running system: otherwise autovacuum's first
    # pass over the freshly loaded rows (an insert-triggered vacuum) runs during the measurement.
    for table in ("auth.mfa_factors", "auth.mfa_challenges", "auth.mfa_amr_claims"):
        c.execute(f"VACUUM ANALYZE {table}")
    return time.perf_counter() - t


def explain_at(c):
    """The plans Postgres actually runs inside verify_challenge, verify_factor and
    cleanup_challenges, captured with auto_explain (nested statements)."""
    c.execute("LOAD 'auto_explain'")
    c.execute("SET auto_explain.log_min_duration = 0; SET auto_explain.log_nested_statements = on")
    c.execute("SET auto_explain.log_format = text; SET client_min_messages = log")
    notices = []
    c.add_notice_handler(lambda d: notices.append(d.message_primary))
    f, secret = c.execute("SELECT factor_id, secret FROM bench.flow_factors WHERE n = (SELECT nextval('bench.flow_seq'))").fetchone()
    cid = c.execute("SELECT challenge_id FROM auth.create_challenge(%s, '127.0.0.1')", (f,)).fetchone()[0]
    notices.clear()
    c.execute("SELECT auth.verify_challenge(%s, '000000')", (cid,))
    c.execute("SELECT auth.verify_factor(%s, auth.totp_generate(%s))", (f, secret))
    c.execute("SELECT auth.cleanup_challenges('3650 days', 1000)")
    c.execute("SET client_min_messages = notice")
    for n in notices:
        if "Query Text:" in n and ("FOR UPDATE" in n or "DELETE FROM auth.mfa_challenges" in n):
            out("    " + n.replace("\n", "\n    "))


def scale():
    sizes = [10_000, 200_000] if QUICK else [10_000, 1_000_000, 10_000_000]
    seconds = 8 if QUICK else 20
    out(f"## 3. Scale: verify latency (pgbench, the flow script, {seconds} s) by size of auth.mfa_challenges")
    rows = []
    with connect() as c:
        for size in sizes:
            secs = load(c, size)
            fresh_factors(c, 40_000 if QUICK else 150_000)
            # Every size starts alike: dirty pages written, then a short warm-up run.
            c.execute("CHECKPOINT")
            pgbench(FLOW, 3)
            with tempfile.TemporaryDirectory() as d:
                os.chmod(d, 0o755)
                tps, _ = pgbench(FLOW, seconds, log_dir=d)
                p50, p99, n = latencies(d)
            rows.append((size, secs, p50, p99, tps))
            out(f"  loaded {size:>10,} challenges ({size // 10:,} factors, {size // 10:,} claims) in {secs:6.1f} s; "
                f"p50 {p50:.3f} ms, p99 {p99:.3f} ms over {n} transactions")
        out(f"EXPLAIN of the statements inside verify and cleanup at {sizes[-1]:,} challenges:")
        explain_at(c)
        # A cleanup call with nothing to delete: every challenge is younger than the cutoff.
        idle = []
        for _ in range(7):
            t0 = time.perf_counter()
            c.execute("SELECT auth.cleanup_challenges('3650 days')")
            idle.append((time.perf_counter() - t0) * 1000)
        idle_ms = sorted(idle)[len(idle) // 2]
        out(f"  cleanup_challenges() with nothing to delete at {sizes[-1]:,} challenges: median {idle_ms:.3f} ms "
            f"(client round trip included)")
    out(f"{'challenges':>12} {'load s':>8} {'p50 ms':>8} {'p99 ms':>8} {'TPS':>8}")
    for size, secs, p50, p99, tps in rows:
        out(f"{size:>12,} {secs:>8.1f} {p50:>8.3f} {p99:>8.3f} {tps:>8.0f}")
    ratio("scale_latency", rows[-1][2] / rows[0][2], "<=", 1.2)
    # (named for the full run's 10 M challenges; --quick measures at its largest size)
    ratio("cleanup_idle_ms_10m", idle_ms, "<=", 5)
    out()


# --- 4. RLS ---------------------------------------------------------------------------------------
def rls():
    out("## 4. RLS: restrictive policies on auth.aal() (unwrapped) and auth.mfa_satisfied() (bare and as an InitPlan), "
        "non-owner role, count(*) scans")
    env = dict(os.environ, RLS_ROWS=str(200_000 if QUICK else 1_000_000), RLS_RUNS=str(5 if QUICK else 9))
    r = subprocess.run([sys.executable, os.path.join(HERE, "rls.py")], capture_output=True, text=True, env=env)
    if r.returncode != 0:
        raise SystemExit(r.stdout + r.stderr)
    figures = {}
    for line in r.stdout.splitlines():
        if line.startswith("RATIO "):
            RESULTS.append(line)
            if line.split()[1] == "rls_policy_overhead":  # RATIO name x goal <= g
                figures["ratio"], figures["goal"] = float(line.split()[2]), float(line.split()[-1])
        elif line.startswith(("without policy ", "with auth.aal() policy ")):
            figures[line.split()[0]] = [float(x) for x in line.split()[-2:]]  # median ms, min ms
        out(line)
    # Where a policy scan's time goes: auth.aal() itself (its C fast path and the two
    # server calls it makes) and the rest of evaluating any qual per row.
    ours = ("mfa_auth_aal", "enum_ne", "GetCurrentStatementStartTimestamp", "GetOuterUserId")
    with connect("mfa_auth_rls", user="bench_reader") as c:
        c.execute("SET max_parallel_workers_per_gather = 0")
        pid = c.execute("SELECT pg_backend_pid()").fetchone()[0]
        flat = perf_flat(4, "symbol", pid=pid, top=40,
                         work=lambda: [c.execute("SELECT count(*) FROM policy_rows").fetchone() for _ in range(25)])
    if flat:
        out("a scan of policy_rows, one backend, by function (self time):")
        for ln in flat[:16]:
            out("    " + ln)
        share = sum(float(ln.split("%")[0]) for ln in flat if any(ln.endswith(f) for f in ours))
        out(f"auth.aal() and the calls it makes ({', '.join(ours)}): {share:.1f}% of the scan")
    if figures["ratio"] > figures["goal"]:
        (plain_med, plain_min), (pol_med, pol_min) = figures["without"], figures["with"]
        MISSED["rls_policy_overhead"] = (
            f"median scans {plain_med:.1f} ms without the policy and {pol_med:.1f} ms with it; the fastest of the same "
            f"scans {plain_min:.1f} and {pol_min:.1f} ms (ratio {pol_min / plain_min:.2f}). The distance between median "
            "and fastest run of one query is the machine's noise during this run. "
            + (f"In section 4's profile auth.aal() with the calls it makes is {share:.1f}% of a policy scan, about "
               f"{pol_min * share / 100:.1f} ms of the {pol_min - plain_min:.1f} ms the policy adds to the fastest scan; the "
               "rest is PostgreSQL evaluating any qual per row (the per-tuple memory context reset and expression "
               "steps that a scan without a qual skips)." if flat else "perf is not available for a profile."))
    out()


# --- plan reuse -----------------------------------------------------------------------------------
def plan_reuse():
    """How often each statement mfa_auth runs inside its functions is planned, per call
    (pg_stat_statements, toplevel = false, tracked only in this section's own connection): 300
    TOTP successes and failures and 300 WebAuthn successes and failures, each call committed.
    A plan cached for the backend and reused is planned a few times (Postgres tries 5 custom
    plans before it settles on the generic one); a statement that Postgres re-plans at every
    call shows about one plan per call. Fails on none seen."""
    import json
    import uuid
    n = 300
    out(f"## 7b. Plan reuse: mfa_auth's own statements, planned vs run ({n} TOTP and {n} WebAuthn successes and failures)")
    with connect() as c:
        c.execute("DROP TABLE IF EXISTS pr_totp, pr_wa")
        c.execute("""CREATE TABLE pr_totp AS SELECT g AS n, gen_random_uuid() AS f, auth.generate_secret() AS s
                       FROM generate_series(1, %s) g""", (n,))
        c.execute("""INSERT INTO auth.mfa_factors (id, user_id, factor_type, secret, status)
                     SELECT f, gen_random_uuid(), 'totp', s, 'verified' FROM pr_totp""")
        c.execute("SELECT auth.rotate_secrets()")
        # WebAuthn: registered factors, each with two open challenges: one answered right, one
        # with a signature of another message.
        c.execute(f"ALTER DATABASE {DB} SET mfa_auth.webauthn_rp_id = 'example.org'")
        c.execute(f"ALTER DATABASE {DB} SET mfa_auth.webauthn_origins = 'https://example.org'")
    with connect() as c:
        rows = []
        for i in range(n):
            auth = SoftAuthenticator("example.org", "https://example.org")
            factor = c.execute("SELECT auth.enroll_webauthn(%s)", (str(uuid.uuid4()),)).fetchone()[0]
            cid, opts = c.execute("SELECT challenge_id, webauthn FROM auth.create_challenge(%s, '10.0.0.1')", (factor,)).fetchone()
            assert c.execute("SELECT auth.verify_webauthn(%s, %s::jsonb)",
                             (cid, json.dumps(auth.register(opts["credential_options"]["publicKey"]["challenge"])))).fetchone()[0]
            good, opts = c.execute("SELECT challenge_id, webauthn FROM auth.create_challenge(%s, '10.0.0.1')", (factor,)).fetchone()
            ok = auth.assert_(opts["credential_options"]["publicKey"]["challenge"])
            bad_cid, opts = c.execute("SELECT challenge_id, webauthn FROM auth.create_challenge(%s, '10.0.0.1')", (factor,)).fetchone()
            bad = auth.assert_(opts["credential_options"]["publicKey"]["challenge"])
            bad["response"]["signature"] = ok["response"]["signature"]
            rows.append((i, good, json.dumps(ok), bad_cid, json.dumps(bad)))
        with c.cursor() as cur:
            c.execute("CREATE TABLE pr_wa (n int, good uuid, ok jsonb, bad uuid, wrong jsonb)")
            cur.executemany("INSERT INTO pr_wa VALUES (%s, %s, %s::jsonb, %s, %s::jsonb)", rows)
        c.execute("SELECT pg_stat_statements_reset()")
        c.execute("SET pg_stat_statements.track = 'all'")
        c.execute("SET pg_stat_statements.track_planning = on")
        c.execute("""CREATE OR REPLACE PROCEDURE pr_calls(INOUT ok int DEFAULT 0) LANGUAGE plpgsql AS $$
            DECLARE r record; cid uuid; BEGIN
            FOR r IN SELECT * FROM pr_totp ORDER BY n LOOP
              SELECT challenge_id INTO cid FROM auth.create_challenge(r.f, '10.0.0.1');
              ok := ok + auth.verify_challenge(cid, auth.totp_generate(r.s), '10.0.0.1', gen_random_uuid())::int;
              COMMIT;
              SELECT challenge_id INTO cid FROM auth.create_challenge(r.f, '10.0.0.1');
              -- a code of another step: wrong (its step is outside the window)
              ok := ok + (NOT auth.verify_challenge(cid, auth.totp_generate(r.s, now() - interval '1 hour'), '10.0.0.1'))::int;
              COMMIT;
            END LOOP;
            FOR r IN SELECT * FROM pr_wa ORDER BY n LOOP
              ok := ok + auth.verify_webauthn(r.good, r.ok, '10.0.0.1', gen_random_uuid())::int;
              COMMIT;
              ok := ok + (NOT auth.verify_webauthn(r.bad, r.wrong, '10.0.0.1'))::int;
              COMMIT;
            END LOOP; END $$""")
        ok = c.execute("CALL pr_calls()").fetchone()[0]
        if ok != 4 * n:
            raise SystemExit(f"plan reuse workload: {ok} of {4 * n} calls gave the expected answer")
        c.execute("SET pg_stat_statements.track = 'none'")
        rows = c.execute("""SELECT calls, plans, regexp_replace(left(query, 100), '\\s+', ' ', 'g')
                              FROM pg_stat_statements
                             WHERE NOT toplevel AND calls >= %s AND query ~ 'auth\\.mfa_'
                               AND dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
                             ORDER BY calls DESC""", (n // 2,)).fetchall()
    worst = 0.0
    out(f"{'calls':>7} {'plans':>6} {'plans/call':>10}  statement")
    for calls, plans, query in rows:
        worst = max(worst, plans / calls)
        out(f"{calls:>7} {plans:>6} {plans / calls:>10.4f}  {query}")
    if not rows:
        raise SystemExit("pg_stat_statements saw none of mfa_auth's statements")
    ratio("hot_path_plans_per_call", worst, "<=", 0.05)
    out()


# --- 5. memory ------------------------------------------------------------------------------------
def rss_anon_kb(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("RssAnon:"):
            return int(line.split()[1])
    raise SystemExit("no RssAnon")


def memory():
    total = 20_000 if QUICK else 100_000
    batch = 1000
    out(f"## 5. Memory: private (RssAnon) growth of one backend over {total:,} verifications")
    with connect() as c:
        fresh_factors(c, total + batch)
        pid = c.execute("SELECT pg_backend_pid()").fetchone()[0]
        verify = """SELECT count(*) FILTER (WHERE auth.verify_challenge(ch.challenge_id, auth.totp_generate(f.secret)))
                      FROM bench.flow_factors f, LATERAL auth.create_challenge(f.factor_id, '127.0.0.1') ch
                     WHERE f.n BETWEEN %s AND %s"""
        assert c.execute(verify, (1, batch)).fetchone()[0] == batch  # warm-up: caches, plans
        before = rss_anon_kb(pid)
        t = time.perf_counter()
        done = 0
        for start in range(batch + 1, batch + total + 1, batch):
            done += c.execute(verify, (start, start + batch - 1)).fetchone()[0]
        secs = time.perf_counter() - t
        after = rss_anon_kb(pid)
    out(f"verifications: {done:,} (all right) in {secs:.1f} s; RssAnon {before / 1024:.1f} MB -> {after / 1024:.1f} MB")
    ratio("backend_rss_growth_mb", (after - before) / 1024, "<=", 5)
    out()


# --- 6. WebAuthn ------------------------------------------------------------------------------


class SoftAuthenticator:
    """An ES256 authenticator in software (cryptography), for load: registration with
    attestation "none", then assertions with an increasing signature counter."""

    def __init__(self, rp_id, origin):
        from cryptography.hazmat.primitives.asymmetric import ec
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.rp_id, self.origin = rp_id, origin
        self.cred_id = os.urandom(16)
        self.count = 0

    @staticmethod
    def b64(b):
        import base64
        return base64.urlsafe_b64encode(b).rstrip(b"=").decode()

    def _client(self, kind, challenge):
        import json
        return json.dumps({"type": kind, "challenge": challenge, "origin": self.origin, "crossOrigin": False}).encode()

    def _rp_hash(self):
        import hashlib
        return hashlib.sha256(self.rp_id.encode()).digest()

    def register(self, challenge):
        import cbor2
        n = self.key.public_key().public_numbers()
        cose = cbor2.dumps({1: 2, 3: -7, -1: 1, -2: n.x.to_bytes(32, "big"), -3: n.y.to_bytes(32, "big")})
        auth = self._rp_hash() + bytes([0x41]) + (0).to_bytes(4, "big") + bytes(16) \
            + len(self.cred_id).to_bytes(2, "big") + self.cred_id + cose
        att = cbor2.dumps({"fmt": "none", "attStmt": {}, "authData": auth})
        return {"id": self.b64(self.cred_id), "rawId": self.b64(self.cred_id), "type": "public-key",
                "response": {"clientDataJSON": self.b64(self._client("webauthn.create", challenge)),
                             "attestationObject": self.b64(att)}}

    def assert_(self, challenge):
        import hashlib

        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import ec
        self.count += 1
        client = self._client("webauthn.get", challenge)
        auth = self._rp_hash() + bytes([0x05]) + self.count.to_bytes(4, "big")
        sig = self.key.sign(auth + hashlib.sha256(client).digest(), ec.ECDSA(hashes.SHA256()))
        return {"id": self.b64(self.cred_id), "rawId": self.b64(self.cred_id), "type": "public-key",
                "response": {"clientDataJSON": self.b64(client), "authenticatorData": self.b64(auth),
                             "signature": self.b64(sig)}}


def in_database_ms(c, table, call):
    """p50 and p99 (ms) of `call` (a SQL expression over the row `r` of `table`), each call timed
    inside the server with clock_timestamp() and committed on its own (a procedure looping over
    the rows, COMMIT after each): no client round trip, no commit in the figure. A checkpoint
    first, as before section 2's rounds: the dirty pages of earlier sections' loads (10 M
    challenges in section 3) are written then, not by these calls' buffer evictions."""
    c.execute("DROP TABLE IF EXISTS call_ms")
    c.execute("CREATE UNLOGGED TABLE call_ms (ok boolean, ms float8)")
    c.execute(f"""CREATE OR REPLACE PROCEDURE timed_calls() LANGUAGE plpgsql AS $$
        DECLARE r record; t timestamptz; ok boolean; BEGIN
        FOR r IN SELECT * FROM {table} ORDER BY n LOOP
          t := clock_timestamp(); ok := {call};
          INSERT INTO call_ms VALUES (ok, extract(epoch FROM clock_timestamp() - t) * 1000);
          COMMIT;
        END LOOP; END $$""")
    c.execute("CHECKPOINT")
    c.execute("CALL timed_calls()")
    ok, total, p50, p99 = c.execute("""SELECT count(*) FILTER (WHERE ok), count(*),
        percentile_cont(0.5) WITHIN GROUP (ORDER BY ms), percentile_cont(0.99) WITHIN GROUP (ORDER BY ms) FROM call_ms""").fetchone()
    return ok, total, p50, p99


def webauthn():
    import json
    import uuid

    import pyotp
    n = 300 if QUICK else 2000
    out(f"## 6. WebAuthn: one auth.verify_webauthn of an ES256 assertion, timed inside the server ({n} calls)")
    with connect() as c:
        c.execute(f"ALTER DATABASE {DB} SET mfa_auth.webauthn_rp_id = 'example.org'")
        c.execute(f"ALTER DATABASE {DB} SET mfa_auth.webauthn_origins = 'https://example.org'")
    with connect() as c:
        # A registered factor per call (as the TOTP figure beside it uses a fresh factor per call).
        c.execute("CREATE TABLE wa (n int, cid uuid, cred jsonb, sid uuid)")
        rows = []
        for i in range(n):
            auth = SoftAuthenticator("example.org", "https://example.org")
            factor = c.execute("SELECT auth.enroll_webauthn(%s)", (str(uuid.uuid4()),)).fetchone()[0]
            cid, opts = c.execute("SELECT challenge_id, webauthn FROM auth.create_challenge(%s, '10.0.0.1')", (factor,)).fetchone()
            reg = auth.register(opts["credential_options"]["publicKey"]["challenge"])
            assert c.execute("SELECT auth.verify_webauthn(%s, %s::jsonb)", (cid, json.dumps(reg))).fetchone()[0]
            cid, opts = c.execute("SELECT challenge_id, webauthn FROM auth.create_challenge(%s, '10.0.0.1')", (factor,)).fetchone()
            rows.append((i, cid, json.dumps(auth.assert_(opts["credential_options"]["publicKey"]["challenge"])), uuid.uuid4()))
        with c.cursor() as cur:
            cur.executemany("INSERT INTO wa VALUES (%s, %s, %s::jsonb, %s)", rows)
        wa = in_database_ms(c, "wa", "auth.verify_webauthn(r.cid, r.cred, NULL, r.sid)")
        # Beside it, the TOTP flow's verification: a right code of a fresh factor, with a session.
        c.execute("CREATE TABLE tf (n int, cid uuid, code text, sid uuid)")
        rows = []
        for i in range(n):
            f, secret = c.execute("SELECT factor_id, secret FROM auth.enroll_totp(%s)", (str(uuid.uuid4()),)).fetchone()
            cid = c.execute("SELECT challenge_id FROM auth.create_challenge(%s, '10.0.0.1')", (f,)).fetchone()[0]
            rows.append((i, cid, pyotp.TOTP(secret).now(), uuid.uuid4()))
        with c.cursor() as cur:
            cur.executemany("INSERT INTO tf VALUES (%s, %s, %s, %s)", rows)
        tf = in_database_ms(c, "tf", "auth.verify_challenge(r.cid, r.code, NULL, r.sid)")
    core = subprocess.run(["cargo", "run", "-q", "--release", "--example", "webauthn_micro"], cwd=os.path.dirname(HERE),
                          capture_output=True, text=True)
    for line in core.stdout.splitlines():
        out("    " + line)
    out(f"{'verification (in the server, each call committed)':<50} {'verified':>9} {'p50 ms':>8} {'p99 ms':>8}")
    out(f"{'auth.verify_webauthn (ES256 assertion, session)':<50} {wa[0]:>4}/{wa[1]:<4} {wa[2]:>8.3f} {wa[3]:>8.3f}")
    out(f"{'auth.verify_challenge (TOTP right code, session)':<50} {tf[0]:>4}/{tf[1]:<4} {tf[2]:>8.3f} {tf[3]:>8.3f}")
    ratio("webauthn_verify_ms", wa[2], "<=", 0.3)
    ecdsa = next((float(ln.split()[-1]) for ln in core.stdout.splitlines() if "ECDSA" in ln), 0.0)
    core_us = next((float(ln.split()[-1]) for ln in core.stdout.splitlines() if ln.startswith("all of it")), None)
    if core_us is None:
        raise SystemExit("the WebAuthn micro-benchmark printed no 'all of it' line:\n" + core.stdout + core.stderr)
    ratio("webauthn_core_us", core_us, "<=", 100)
    if wa[2] > 0.3:
        MISSED["webauthn_verify_ms"] = (
            f"the core spends {ecdsa:.1f} us on one assertion's checks (micro-benchmark in section 6), nearly all of it in "
            f"the P-256 ECDSA verification (aws-lc-rs); the TOTP verify_challenge, timed the same way, shares the write path (look-up, locks, "
            f"claim) and takes {tf[2]:.3f} ms. Together {ecdsa / 1000 + tf[2]:.3f} ms of the {wa[2]:.3f} ms "
            f"measured; the other {wa[2] - ecdsa / 1000 - tf[2]:.3f} ms is WebAuthn's own part of the call "
            f"outside the core (the jsonb argument, the session data and stored credential read as JSON text, the "
            f"credential written back with its new sign count). 0.3 ms would leave the signature check "
            f"{max(0.0, 0.3 - tf[2]) * 1000:.0f} us with nothing else.")
    out()


def recovery():
    import uuid
    n = 300 if QUICK else 2000
    out(f"## 7. Recovery codes: one auth.verify_recovery_code (right code, with a session), timed inside the server ({n} calls)")
    with connect() as c:
        c.execute("CREATE TABLE rc (n int, u uuid, code text, sid uuid)")
        rows = []
        for i in range(n // 10):
            user, session = str(uuid.uuid4()), str(uuid.uuid4())
            f, secret = c.execute("SELECT factor_id, secret FROM auth.enroll_totp(%s)", (user,)).fetchone()
            cid = c.execute("SELECT challenge_id FROM auth.create_challenge(%s, '10.0.0.1')", (f,)).fetchone()[0]
            import pyotp
            assert c.execute("SELECT auth.verify_challenge(%s, %s, NULL, %s)", (cid, pyotp.TOTP(secret).now(), session)).fetchone()[0]
            for j, (code,) in enumerate(c.execute("SELECT auth.generate_recovery_codes(%s, %s, 10)", (user, session)).fetchall()):
                rows.append((i * 10 + j, user, code, uuid.uuid4()))
        with c.cursor() as cur:
            cur.executemany("INSERT INTO rc VALUES (%s, %s, %s, %s)", rows)
        r = in_database_ms(c, "rc", "auth.verify_recovery_code(r.u, r.code, NULL, r.sid)")
    out(f"{'verification (in the server, each call committed)':<50} {'verified':>9} {'p50 ms':>8} {'p99 ms':>8}")
    out(f"{'auth.verify_recovery_code (right code, session)':<50} {r[0]:>4}/{r[1]:<4} {r[2]:>8.3f} {r[3]:>8.3f}")
    ratio("recovery_verify_ms", r[2], "<=", 0.5)
    out()


# --- 8. Profile -------------------------------------------------------------------------------------
def wal_per_tx(c, script, n=500):
    """pg_waldump --stats=record over `n` transactions of `script` (one client, after a warm-up)."""
    with tempfile.NamedTemporaryFile("w", suffix=".pgbench", delete=False) as f:
        f.write(script)
    base = ["pgbench", "-n", "-M", "prepared", "-c", "1", "-f", f.name, "-h", os.environ["PGHOST"],
            "-p", os.environ["PGPORT"], "-U", os.environ.get("PGUSER", "postgres"), DB]
    subprocess.run(base + ["-t", "200"], check=True, capture_output=True)
    start = c.execute("SELECT pg_current_wal_lsn()").fetchone()[0]
    subprocess.run(base + ["-t", str(n)], check=True, capture_output=True)
    end = c.execute("SELECT pg_current_wal_lsn()").fetchone()[0]
    os.unlink(f.name)
    datadir = c.execute("SHOW data_directory").fetchone()[0]
    bindir = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True).stdout.strip()
    waldump = os.path.join(bindir, "pg_waldump")
    if not os.path.exists(waldump):
        waldump = f"/usr/lib/postgresql/{c.info.server_version // 10000}/bin/pg_waldump"
    r = subprocess.run([waldump, "--stats=record", "-p", os.path.join(datadir, "pg_wal"), "-s", str(start), "-e", str(end)],
                       capture_output=True, text=True)
    kinds = {}
    for line in r.stdout.splitlines():
        parts = line.split()
        if parts and "/" in parts[0] and parts[0][:1].isupper() and len(parts) > 4:
            kinds[parts[0]] = int(parts[1]) / n
    total_bytes = int(c.execute("SELECT %s::pg_lsn - %s::pg_lsn", (end, start)).fetchone()[0])
    return kinds, total_bytes / n


def perf_flat(seconds, sort, where=None, top=14, pid=None, work=None):
    """A flat `perf` profile (no call graphs) while `work()` runs: the top lines of
    `perf report --sort <sort>`; None when perf is not usable here."""
    if subprocess.run(["sh", "-c", "command -v perf"], capture_output=True).returncode != 0:
        return None
    tmp = tempfile.mkdtemp(prefix="mfa_auth-perf.")
    data = os.path.join(tmp, "perf.data")
    target = ["-p", str(pid)] if pid else ["-a"]
    rec = subprocess.Popen(["perf", "record", "-F", "1999", *target, "-o", data, "--", "sleep", str(seconds)],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.3)
    work()
    rec.wait()
    args = ["perf", "report", "-i", data, "--no-children", "--sort", sort, "--stdio", "-g", "none"]
    if where:
        args += ["--comm", where]
    r = subprocess.run(args, capture_output=True, text=True)
    shutil.rmtree(tmp, ignore_errors=True)
    lines = [ln.rstrip() for ln in r.stdout.splitlines() if ln.strip() and not ln.startswith("#")]
    return [re.sub(r"\s+", " ", ln).removesuffix(" - -").strip() for ln in lines[:top]]


TREE = ["create_challenge_v2_wrapper", "verify_challenge_wrapper", "SPI_execute_plan", "standard_ExecutorStart",
        "ExecInitLockRows", "ExecConstraints", "stringToNode", "ExecInsertIndexTuples", "heap_insert", "heap_update",
        "heap_lock_tuple", "XLogInsert", "index_getnext_slot", "CommitTransactionCommand",
        "mfa_auth::secrets::open_stored", "mfa_auth::otp::hotp::verify_totp"]


def perf_tree(pid, seconds, work):
    """Inclusive shares (call graphs from DWARF) of the functions in TREE, sampled on one backend."""
    tmp = tempfile.mkdtemp(prefix="mfa_auth-perf.")
    data = os.path.join(tmp, "perf.data")
    rec = subprocess.Popen(["perf", "record", "-F", "499", "-p", str(pid), "--call-graph", "dwarf,32768", "-o", data,
                            "--", "sleep", str(seconds)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.3)
    work()
    rec.wait()
    r = subprocess.run(["perf", "report", "-i", data, "--children", "--sort", "symbol", "--stdio", "-g", "none"],
                       capture_output=True, text=True)
    shutil.rmtree(tmp, ignore_errors=True)
    share = {}
    for line in r.stdout.splitlines():
        m = re.match(r"\s*([0-9.]+)%\s+([0-9.]+)%\s+\[.\]\s+(\S+)", line)
        if m and m.group(3) in TREE and m.group(3) not in share:
            share[m.group(3)] = float(m.group(1))
    return share


def profile():
    seconds = 4 if QUICK else 10
    out("## 8. Profile: where the flow's time goes, and the floor (perf, pg_waldump)")
    with connect() as c:
        # Every run below works on factors no run has used: a factor verified twice within one
        # 30-second step would be refused (its step is used up) and measure the failure path.
        fresh_factors(c, 5_000)
        c.execute("VACUUM ANALYZE auth.mfa_factors")
        c.execute("CREATE TABLE IF NOT EXISTS bench.bare_challenges (LIKE auth.mfa_challenges INCLUDING ALL)")
        c.execute("CREATE SEQUENCE IF NOT EXISTS bench.bare_seq")
        c.execute("SELECT setval('bench.bare_seq', 1, false)")
        out("WAL records per transaction (pg_waldump --stats=record over 500 transactions, one client):")
        wal = {"ours": wal_per_tx(c, FLOW), "floor": wal_per_tx(c, FLOOR),
               "bare": wal_per_tx(c, BARE.replace("bench.flow_seq", "bench.bare_seq"))}
        out(f"    {'record type':<22} " + " ".join(f"{k:>7}" for k in wal))
        kinds = sorted({k for w, _ in wal.values() for k in w}, key=lambda k: -wal["ours"][0].get(k, 0))
        for k in kinds:
            if any(w.get(k, 0) >= 0.05 for w, _ in wal.values()):
                out(f"    {k:<22} " + " ".join(f"{w.get(k, 0):>7.2f}" for w, _ in wal.values()))
        out(f"    {'total records':<22} " + " ".join(f"{sum(w.values()):>7.2f}" for w, _ in wal.values()))
        out(f"    {'bytes':<22} " + " ".join(f"{b:>7.0f}" for _, b in wal.values()))
        n_flow = (3_000 if QUICK else 2_500) * seconds
        fresh_factors(c, n_flow)
        c.execute("CHECKPOINT")
        flat = perf_flat(seconds, "comm,dso", work=lambda: pgbench(FLOW, seconds))
        if flat is None:
            out("perf is not available here: no CPU profile")
            out()
            return
        out(f"CPU samples of the whole machine during the flow under pgbench (2 clients, {seconds} s), by process and object:")
        for ln in flat[:10]:
            out("    " + ln)
        fresh_factors(c, n_flow)
        flat = perf_flat(seconds, "dso,symbol", where="postgres", top=25, work=lambda: pgbench(FLOW, seconds))
        out("the same, postgres processes only, by function (self time):")
        for ln in flat:
            out("    " + ln)
        pid = c.execute("SELECT pg_backend_pid()").fetchone()[0]
        # The flow inside one backend (no client, no network): a procedure running create +
        # verify and committing each, sampled with call graphs; inclusive shares.
        c.execute("""CREATE OR REPLACE PROCEDURE bench.flow_loop(a int, z int) LANGUAGE plpgsql AS $$
            DECLARE r record; cid uuid; BEGIN
            FOR r IN SELECT * FROM bench.flow_factors WHERE n BETWEEN a AND z ORDER BY n LOOP
              SELECT challenge_id INTO cid FROM auth.create_challenge(r.factor_id, '127.0.0.1');
              IF NOT auth.verify_challenge(cid, auth.totp_generate(r.secret), NULL, gen_random_uuid()) THEN
                RAISE 'wrong code';
              END IF;
              COMMIT;
            END LOOP; END $$""")
        fresh_factors(c, 20_000)
        c.execute("VACUUM ANALYZE auth.mfa_factors")
        c.execute("CALL bench.flow_loop(1, 200)")
        share = perf_tree(pid, seconds, lambda: c.execute("CALL bench.flow_loop(201, %s)", (6_000 if QUICK else 15_000,)))
        out("inside the server: create_challenge + verify_challenge + COMMIT in a loop, one backend, inclusive share of its CPU:")
        for name in TREE:
            if name in share:
                out(f"    {share[name]:6.2f}%  {name}")
        q = ("SELECT count(auth.totp_verify('JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP', '000000', now(), 1)) "
             "FROM generate_series(1, %s) g")
        c.execute(q, (1000,))  # warm-up
        calls = 500_000 if QUICK else 2_000_000
        took = []
        flat = perf_flat(seconds, "symbol", pid=pid, top=16, work=lambda: took.append(timed(c, q, (calls,))))
        out("auth.totp_verify (wrong code, window 1: 3 HMAC-SHA-1), one backend, by function (self time):")
        for ln in flat:
            out("    " + ln)
        us = took[0] / calls * 1e6
        sha = sum(float(ln.split("%")[0]) for ln in flat if "sha1::" in ln or "sha1_lanes::" in ln)
        empty = min(timed(c, "SELECT count(g) FROM generate_series(1, %s) g", (calls,)) for _ in range(3)) / calls * 1e6
        out(f"per call {us:.3f} us while sampled; SHA-1 compression {sha:.1f}% of it = {us * sha / 100:.3f} us for 8 "
            f"compressions in 3 interleaved batches (the key's inner and outer pads, then the 3 steps' inner blocks, then "
            f"their outer blocks; one pgcrypto hmac() needs 4 in a row); the query's own loop (generate_series + count) {empty:.3f} us")
    out()


def main():
    version = setup()
    cpus = os.cpu_count()
    model = next((ln.split(":", 1)[1].strip() for ln in open("/proc/cpuinfo") if ln.startswith("model name")), platform.machine())
    when = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    out(f"# mfa_auth benchmarks ({'quick' if QUICK else 'full'}), {when}")
    out(f"machine: {cpus} cores ({model}), {os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') // 2**30} GiB; PostgreSQL {version}")
    out()
    t0 = time.perf_counter()
    if "--only-flow" not in sys.argv:
        stateless()
    flow()
    if "--only-flow" not in sys.argv:
        scale()
    if "--only-flow" not in sys.argv:
        rls()
    if "--only-flow" not in sys.argv:
        memory()
    if "--only-flow" not in sys.argv or "--webauthn" in sys.argv:
        webauthn()
    if "--only-flow" not in sys.argv or "--recovery" in sys.argv:
        recovery()
    plan_reuse()
    if "--only-flow" not in sys.argv or "--profile" in sys.argv:
        profile()
    out(f"total bench time: {time.perf_counter() - t0:.0f} s")
    for name, why in MISSED.items():
        print(f"not reached: {name}: {why}")
    if not QUICK:
        with open(os.path.join(HERE, "RESULTS.md"), "w") as f:
            f.write("Written by `bench/run` (full size); do not edit by hand.\n\n```\n")
            f.write("\n".join(REPORT) + "\n```\n\n")
            f.write("\n".join(RESULTS) + "\n")
            if MISSED:
                f.write("\n## Goals not reached in this run, and why (from its own figures)\n\n")
                for name, why in MISSED.items():
                    f.write(f"- `{name}`: {why}\n")


if __name__ == "__main__":
    main()
