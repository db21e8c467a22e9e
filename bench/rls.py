"""RLS benchmark: a 1 M-row table scanned with and without a restrictive policy on
auth.aal() (unwrapped), as a non-owner role, alternating runs; prints figures and
`RATIO rls_policy_overhead <value> goal <= 1.5`. Connection from PGHOST/PGPORT/PGUSER
(a superuser); run through bench/rls.sh, which starts a throwaway cluster."""
import os
import statistics
import sys
import time

import psycopg

ROWS = int(os.environ.get("RLS_ROWS", "1000000"))
RUNS = int(os.environ.get("RLS_RUNS", "9"))


def conn(user=None, db="mfa_auth_rls"):
    return psycopg.connect(host=os.environ["PGHOST"], port=os.environ["PGPORT"],
                           user=user or os.environ.get("PGUSER", "postgres"), dbname=db, autocommit=True)


def main():
    with conn(db="postgres") as c:
        c.execute("DROP DATABASE IF EXISTS mfa_auth_rls WITH (FORCE)")
        c.execute("CREATE DATABASE mfa_auth_rls")
    with conn() as c:
        c.execute("CREATE EXTENSION mfa_auth")
        c.execute("DROP ROLE IF EXISTS bench_reader")
        c.execute("CREATE ROLE bench_reader LOGIN")
        t0 = time.perf_counter()
        for name in ("plain_rows", "policy_rows"):
            c.execute(f"CREATE TABLE {name} (id int, body text)")
            c.execute(f"INSERT INTO {name} SELECT g, md5(g::text) FROM generate_series(1, %s) g", (ROWS,))
            c.execute(f"VACUUM ANALYZE {name}")
            c.execute(f"GRANT SELECT ON {name} TO bench_reader")
        # Both tables have RLS on with a permissive always-true policy, so the only
        # difference is the restrictive auth.aal() policy (aal1 sessions pass `<> 'aal3'`:
        # every row is returned and the predicate is evaluated on every row).
        for name in ("plain_rows", "policy_rows"):
            c.execute(f"ALTER TABLE {name} ENABLE ROW LEVEL SECURITY")
            c.execute(f"CREATE POLICY everyone ON {name} FOR SELECT USING (true)")
        c.execute("CREATE POLICY mfa ON policy_rows AS RESTRICTIVE FOR SELECT USING (auth.aal() <> 'aal3')")
        print(f"loaded 2 x {ROWS} rows in {time.perf_counter() - t0:.1f} s")
        # Measure without background writes of the load (or of earlier benchmarks) competing.
        c.execute("CHECKPOINT")
    with conn(user="bench_reader") as r:
        # Parallel workers would help only the table without the (parallel-restricted)
        # policy; compare per-row cost on one core.
        r.execute("SET max_parallel_workers_per_gather = 0")
        plan = "\n".join(x[0] for x in r.execute("EXPLAIN (COSTS OFF) SELECT count(*) FROM policy_rows").fetchall())
        print("plan with the policy:\n" + plan)
        times = {"plain_rows": [], "policy_rows": []}
        for name in times:  # warm the cache
            r.execute(f"SELECT count(*) FROM {name}").fetchone()
        for _ in range(RUNS):
            for name in times:
                t = time.perf_counter()
                n = r.execute(f"SELECT count(*) FROM {name}").fetchone()[0]
                times[name].append(time.perf_counter() - t)
                assert n == ROWS, (name, n)
    plain = statistics.median(times["plain_rows"]) * 1000
    policy = statistics.median(times["policy_rows"]) * 1000
    print(f"{'scan of ' + str(ROWS) + ' rows':<32} {'median ms':>10} {'min ms':>8}")
    print(f"{'without policy':<32} {plain:>10.1f} {min(times['plain_rows']) * 1000:>8.1f}")
    print(f"{'with auth.aal() policy':<32} {policy:>10.1f} {min(times['policy_rows']) * 1000:>8.1f}")
    print(f"per-row cost of the policy: {(policy - plain) * 1e6 / ROWS:.1f} ns")
    ratio = policy / plain
    print(f"RATIO rls_policy_overhead {ratio:.2f} goal <= 1.5")
    return 0


if __name__ == "__main__":
    sys.exit(main())
