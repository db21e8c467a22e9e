#!/usr/bin/env bash
# Runs every test level of mfa_auth and prints a summary; exits non-zero on any failure.
#   0. lint                                           (cargo fmt --check, cargo clippy -D warnings)
#   1. pure-Rust unit tests                           (cargo test --lib, #[pg_test]s skipped)
#   2. in-database #[pg_test] tests                    (cargo pgrx test pg15)
#   3. SQL regression tests with expected output       (pg_regress, tests/pg_regress)
#   4. end-to-end client tests over a real connection  (pytest + psycopg, tests/e2e)
#   5. crash invariants under load                     (pgbench + SIGKILL + immediate shutdown, tests/crash)
#   6. upgrade from the last release                   (ALTER EXTENSION UPDATE vs a fresh install, tests/upgrade)
# Installs its own prerequisites first (scripts/prereqs.sh), idempotently.
set -uo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)
. "$here/lib.sh"
ensure_cargo_path
set -e
bash "$here/prereqs.sh"
set +e
cd "$root"

work=$(mktemp -d /tmp/mfa_auth-test.XXXXXX)
chmod 755 "$work"
cleanup() { stop_cluster "$work/cluster"; rm -rf "$work"; }
trap cleanup EXIT

declare -A passed failed
status=0
record() { # level passed failed
  passed[$1]=$2; failed[$1]=$3
  [ "$3" = 0 ] || status=1
}
# Sums "N passed; M failed" over cargo's "test result:" lines.
cargo_counts() {
  awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i } }
       END { print p + 0, f + 0 }' "$1"
}
t0=$(date +%s)

# --- 0. lint ------------------------------------------------------------------------
log "level 0: lint (cargo fmt --check; cargo clippy --all-targets -D warnings)"
lint_failed=0
cargo fmt --check >"$work/fmt.log" 2>&1 || { lint_failed=$((lint_failed + 1)); head -n 40 "$work/fmt.log"; }
cargo clippy --all-targets --features pg_test -- -D warnings >"$work/clippy.log" 2>&1 \
  || { lint_failed=$((lint_failed + 1)); grep -E '^(error|warning)' -A6 "$work/clippy.log" | head -n 60; }
record lint $((2 - lint_failed)) "$lint_failed"

# --- 1. unit tests -----------------------------------------------------------------
log "level 1: pure-Rust unit tests (cargo test --lib)"
cargo test --lib --no-fail-fast -- --skip tests::pg_ 2>&1 | tee "$work/unit.log" | grep -E '^(test |error|warning: unused)' | grep -v ' ok$' || true
read -r p f < <(cargo_counts "$work/unit.log")
grep -q '^test result:' "$work/unit.log" || f=$((f + 1))
record unit "$p" "$f"

# --- 2. #[pg_test] -------------------------------------------------------------------
log "level 2: in-database tests (cargo pgrx test pg$PG_MAJOR)"
runas=()
if [ "$(id -u)" = 0 ]; then
  install -d -o postgres -g postgres "$work/pgrx-test-pgdata"
  runas=(--runas postgres --pgdata "$work/pgrx-test-pgdata")
fi
cargo pgrx test "pg$PG_MAJOR" ::pg_ "${runas[@]}" </dev/null >"$work/pgtest.log" 2>&1
pg_rc=$?
sed 's/\x1b\[[0-9;]*m//g' "$work/pgtest.log" > "$work/pgtest.clean.log"
grep -E '^test .* (FAILED|ignored)$|^error|panicked' "$work/pgtest.clean.log" | head -40
read -r p f < <(cargo_counts "$work/pgtest.clean.log")
if [ "$pg_rc" != 0 ] && [ "$f" = 0 ]; then f=1; tail -n 40 "$work/pgtest.clean.log"; fi
record pg_test "$p" "$f"

# --- 3 and 4 need the release build in a real cluster -------------------------------
install_extension "$work/install.log"
port=$(free_port)
log "starting a throwaway cluster on 127.0.0.1:$port"
start_cluster "$work/cluster" "$port" "shared_preload_libraries=mfa_auth"
export PGHOST=127.0.0.1 PGPORT=$port PGUSER=postgres

log "level 3: SQL regression tests (pg_regress)"
regress_dir="$root/tests/pg_regress"
tests=$(cd "$regress_dir/sql" && ls *.sql | sed 's/\.sql$//' | grep -vx setup | sort | tr '\n' ' ')
( cd "$regress_dir" && "/usr/lib/postgresql/$PG_MAJOR/lib/pgxs/src/test/regress/pg_regress" \
    --host=127.0.0.1 --port="$port" --user=postgres --dbname=mfa_auth_regress \
    --inputdir=. --outputdir="$root/target/pg_regress" setup $tests ) >"$work/regress.log" 2>&1
rg_rc=$?
grep -E '^(ok|not ok|test |     ?[a-z_]+ +\.\.\.)|tests? (passed|failed)' "$work/regress.log"
total=$(($(echo "$tests" | wc -w) + 1))
f=$(grep -cE '^not ok|\.\.\. FAILED|  FAILED' "$work/regress.log")
if [ "$rg_rc" != 0 ]; then
  [ -f "$root/target/pg_regress/regression.diffs" ] && head -c 20000 "$root/target/pg_regress/regression.diffs"
  [ "$f" = 0 ] && f=1
fi
record pg_regress $((total - f)) "$f"

log "level 4: end-to-end client tests (pytest over TCP)"
"$root/.venv/bin/python" -m pytest -q -s -p no:cacheprovider "$root/tests/e2e" 2>&1 | tee "$work/e2e.log" | tail -n 25
read -r p f < <(python3 - "$work/e2e.log" <<'PY'
import re, sys
text = open(sys.argv[1]).read().splitlines()
last = [l for l in text if re.search(r"\d+ (passed|failed|error)", l)]
line = last[-1] if last else ""
g = lambda w: sum(int(n) for n in re.findall(r"(\d+) " + w, line))
p, f = g("passed"), g("failed") + g("error")
print(p, f if (p or f) else 1)
PY
)
record e2e "$p" "$f"

log "level 5: crash invariants under verification load (tests/crash/run.sh)"
bash "$root/tests/crash/run.sh" 3 6 >"$work/crash.log" 2>&1
crash_rc=$?
tail -n 32 "$work/crash.log"
if [ "$crash_rc" = 0 ]; then record crash 1 0; else record crash 0 1; fi

log "level 6: upgrade from the last release (tests/upgrade/run.sh)"
bash "$root/tests/upgrade/run.sh" >"$work/upgrade.log" 2>&1
upgrade_rc=$?
grep -vE '^\s*$' "$work/upgrade.log" | tail -n 40
if [ "$upgrade_rc" = 0 ]; then record upgrade 1 0; else record upgrade 0 1; fi

elapsed=$(( $(date +%s) - t0 ))
echo
echo "=================== mfa_auth test summary ==================="
tp=0; tf=0
for level in lint unit pg_test pg_regress e2e crash upgrade; do
  printf '  %-11s %4s passed, %s failed\n' "$level" "${passed[$level]}" "${failed[$level]}"
  tp=$((tp + passed[$level])); tf=$((tf + failed[$level]))
done
echo "  wall time  ${elapsed}s"
echo "============================================================="
echo "total: $tp passed, $tf failed"
exit $status
