#!/usr/bin/env bash
# Crash invariants: drives verification load with pgbench (several clients, right, wrong and
# replayed codes, a quarter of the transactions rolled back), kills a backend with SIGKILL in
# the middle, later stops the server with an immediate shutdown in the middle, restarts it,
# and checks that nothing broke: no challenge verified twice, no TOTP step accepted twice,
# every verified challenge with its AMR claim, no negative counters, no orphans, consistent
# indexes. Runs in a throwaway cluster of its own.
#   tests/crash/run.sh [ROUNDS] [SECONDS_PER_LOAD]     (defaults: 2 rounds, 5 s)
# Exits non-zero when an invariant is broken or a crash did not happen as planned.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
. "$root/scripts/lib.sh"

rounds=${1:-2}
secs=${2:-5}
clients=4
factors=2000
dir=$(mktemp -d /tmp/mfa_auth-crash.XXXXXX)
chmod 755 "$dir"
port=$(free_port)
db=mfa_auth_crash
trap 'stop_cluster "$dir/cluster"; rm -rf "$dir"' EXIT

start_cluster "$dir/cluster" "$port"
export PGHOST=127.0.0.1 PGPORT=$port PGUSER=postgres
psql() { command psql -X -q -v ON_ERROR_STOP=1 "$@"; }
psql -d postgres -c "CREATE DATABASE $db"
psql -d "$db" -v factors=$factors -f "$here/setup.sql" >/dev/null

pgbench_bg() { # log-file; sets bench_pid
  "$PG_BIN/pgbench" -n -c "$clients" -j 2 -T "$secs" -D factors=$factors -f "$here/load.pgbench" "$db" >"$1" 2>&1 &
  bench_pid=$!
}
wait_ready() {
  for _ in $(seq 1 120); do
    "$PG_BIN/pg_isready" -q -d "$db" && psql -d "$db" -c 'SELECT 1' >/dev/null 2>&1 && return 0
    sleep 0.5
  done
  die "the server did not come back"
}
outcomes() { psql -d "$db" -At -c "SELECT count(*) FROM crash.accepted"; }

kills=0 immediates=0 victims=
for r in $(seq 1 "$rounds"); do
  # (a) SIGKILL one backend serving the load: the postmaster resets every backend and
  #     recovers from WAL.
  pgbench_bg "$dir/bench-$r-a.log"
  sleep $((secs / 2))
  victim=$(psql -d "$db" -At -c "SELECT pid FROM pg_stat_activity WHERE application_name = 'pgbench' ORDER BY random() LIMIT 1")
  [ -n "$victim" ] || die "round $r: no pgbench backend to kill"
  kill -KILL "$victim"
  kills=$((kills + 1)); victims="${victims:+$victims|}$victim"
  wait "$bench_pid" || true
  wait_ready
  # (b) Immediate shutdown (no checkpoint, like a power cut for the server) under load, restart.
  pgbench_bg "$dir/bench-$r-b.log"
  sleep $((secs / 2))
  as_cluster_user "$PG_BIN/pg_ctl" -D "$dir/cluster/data" -m immediate -w stop >/dev/null
  immediates=$((immediates + 1))
  wait "$bench_pid" || true
  start_cluster "$dir/cluster" "$port"
  wait_ready
  echo "round $r: SIGKILL of backend $victim, immediate shutdown, restart; accepted so far: $(outcomes)"
done

# The crashes really happened.
log_kills=$(grep -c 'was terminated by signal 9' "$dir/cluster/server.log" || true)
log_recoveries=$(grep -c 'database system was not properly shut down; automatic recovery in progress\|database system was interrupted' "$dir/cluster/server.log" || true)
[ "$log_kills" -ge "$kills" ] || die "expected $kills backend kills in the server log, found $log_kills"
[ "$log_recoveries" -ge "$immediates" ] || die "expected $immediates crash recoveries in the server log, found $log_recoveries"

# No other crash: every process terminated by a signal is one this test killed.
scan_logs -x "\(PID ($victims)\) was terminated by signal 9|all server processes terminated; reinitializing" \
  "$dir/cluster/server.log" || die "the server log shows a crash this test did not cause"

# Load figures: pgbench transactions that completed before each crash.
txns=$(cat "$dir"/bench-*.log | awk '/number of transactions actually processed/ { split($NF, a, "/"); s += a[1] } END { print s + 0 }')
psql -d "$db" -At -F ' ' -c "SELECT count(*) FILTER (WHERE verified_at IS NOT NULL), count(*) FROM auth.mfa_challenges" \
  | { read -r verified total; echo "challenges: $total created, $verified verified (committed); pgbench transactions reported: $txns"; }
echo "crashes: $kills SIGKILLed backends, $immediates immediate shutdowns; server log: $log_kills kills, $log_recoveries recoveries"

# After the restarts the extension works: a fresh verification succeeds.
psql -d "$db" -At -c "SELECT crash.step(1, 1) IN ('accepted', 'rejected')" | grep -qx t || die "verification broken after restart"

out=$(psql -d "$db" -A -F ' | ' -f "$here/check.sql")
echo "$out"
bad=$(echo "$out" | awk -F ' \\| ' 'NF == 2 && $2 ~ /^[0-9]+$/ && $2 > 0' | grep -v btree_indexes_checked || true)
if [ -n "$bad" ]; then
  echo "BROKEN INVARIANTS:"; echo "$bad"; exit 1
fi
echo "crash invariants: all hold after $rounds rounds"

