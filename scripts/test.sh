#!/usr/bin/env bash
# Runs every test level of mfa_auth and prints a summary; exits non-zero on any failure.
#   0. lint                                           (cargo fmt --check, cargo clippy -D warnings, fuzz targets build,
#                                                       scripts/check_layers.py, ruff, shellcheck, cargo machete,
#                                                       scripts/check_release.py)
#   1. pure-Rust unit tests                           (cargo test --workspace --lib, #[pg_test]s skipped)
#   2. in-database #[pg_test] tests                    (cargo pgrx test pg15)
#   3. SQL regression tests with expected output       (pg_regress, tests/pg_regress)
#   4. end-to-end client tests over a real connection  (pytest + psycopg, tests/e2e)
#  4b. the example pgTAP suite                        (pg_prove over examples/pgtap with mfa_auth_test; a
#                                                       broken policy must make it fail)
#   5. crash invariants under load                     (pgbench + SIGKILL + immediate shutdown, tests/crash;
#                                                       a running server while the library is reinstalled)
#   6. upgrade from each release                       (ALTER EXTENSION UPDATE vs a fresh install, tests/upgrade)
#   7. the other configurations users run              (pg_regress + e2e flow and configuration tests in
#                                                       clusters of each: nokey, inline, nopreload)
#   8. a streaming standby                             (pg_basebackup -R, hot standby, tests/standby)
#  8b. failover under a real HA manager                (pg_auto_failover: monitor + 2 nodes, synchronous
#                                                       replication, the primary SIGKILLed under load and
#                                                       back again, tests/failover)
# Levels 3-4 run in the README's production configuration (preloaded, a key file). Every
# level that runs a server fails when one of its server logs shows a crashed process, a
# PANIC or a failed assertion (scan_logs in scripts/lib.sh), naming the log line.
# Installs its own prerequisites first (scripts/prereqs.sh), idempotently.
#   9. other PostgreSQL majors, each built once from   (pg_test, pg_regress, e2e flow/session/configurations,
#      Debian's source package (scripts/pg-build.sh)    pg_upgrade 15 -> it, the release upgrade path on it:
#                                                       18 by default; --all-versions: every major of EXTRA_MAJORS
#                                                       in scripts/lib.sh, 18 since 13 went in 0.3.0)
#  10. the Debian packages                             (scripts/package.sh per major and for the 0.1.0, 0.2.0 and 0.3.0
#                                                       releases, lintian; tests/package/run.sh: installed with
#                                                       apt-get, no cargo or rustc on PATH, e2e flow/session/
#                                                       configurations, dpkg -r and reinstall, package upgrades
#                                                       0.3.0, 0.2.0 and 0.1.0 -> this)
# Usage: scripts/test.sh [--all-versions]
set -uo pipefail
all_versions=0
[ "${1:-}" = --all-versions ] && all_versions=1
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
cleanup() { for d in "$work"/cluster*; do stop_cluster "$d"; done; rm -rf "$work"; }
trap cleanup EXIT

declare -A passed failed
status=0
levels=()
record() { # level passed failed
  passed[$1]=$2; failed[$1]=$3
  levels+=("$1")
  [ "$3" = 0 ] || status=1
}
# crash_check LEVEL LOG...: one more failure for LEVEL when a server log shows a crash.
crash_check() {
  local level=$1; shift
  if ! scan_logs "$@"; then
    failed[$level]=$((failed[$level] + 1)); status=1
  fi
}
# Sums "N passed; M failed" over cargo's "test result:" lines.
cargo_counts() {
  awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i } }
       END { print p + 0, f + 0 }' "$1"
}
t0=$(date +%s)

# --- 0. lint ------------------------------------------------------------------------
log "level 0: lint (cargo fmt, clippy of the extension and its core, the fuzz targets build, the layer/circle check, ruff, shellcheck, cargo machete, the release metadata)"
lint_failed=0
cargo fmt --check >"$work/fmt.log" 2>&1 || { lint_failed=$((lint_failed + 1)); head -n 40 "$work/fmt.log"; }
cargo clippy --all-targets --features pg_test -- -D warnings >"$work/clippy.log" 2>&1 \
  || { lint_failed=$((lint_failed + 1)); grep -E '^(error|warning)' -A6 "$work/clippy.log" | head -n 60; }
cargo clippy -p mfa_auth_core --all-targets -- -D warnings >"$work/clippy-core.log" 2>&1 \
  || { lint_failed=$((lint_failed + 1)); grep -E '^(error|warning)' -A6 "$work/clippy-core.log" | head -n 60; }
# The fuzz targets (their own workspace, fuzz/) compile against the core: checked, not fuzzed.
(cd fuzz && cargo check --bins) >"$work/fuzz-check.log" 2>&1 \
  || { lint_failed=$((lint_failed + 1)); grep -E '^(error|warning)' -A6 "$work/fuzz-check.log" | head -n 60; }
# No import circle and no upward import between the layers (scripts/check_layers.py).
python3 scripts/check_layers.py >"$work/layers.log" 2>&1 || lint_failed=$((lint_failed + 1))
cat "$work/layers.log"
# The Python (rules: ruff.toml) and the shell (rules: .shellcheckrc, warnings and errors).
.venv/bin/ruff check --no-cache . >"$work/ruff.log" 2>&1 || { lint_failed=$((lint_failed + 1)); head -n 40 "$work/ruff.log"; }
shellcheck -x --severity=warning scripts/*.sh scripts/webauthn-demo .ci/run tests/*/*.sh examples/*/*.sh >"$work/shellcheck.log" 2>&1 \
  || { lint_failed=$((lint_failed + 1)); head -n 40 "$work/shellcheck.log"; }
# No dependency that no code uses (every Cargo.toml of the repository).
cargo machete >"$work/machete.log" 2>&1 || { lint_failed=$((lint_failed + 1)); cat "$work/machete.log"; }
# The release metadata (META.json, CHANGELOG.md, the control file) agrees with Cargo.toml's version.
python3 scripts/check_release.py || lint_failed=$((lint_failed + 1))
record lint $((9 - lint_failed)) "$lint_failed"

# --- 1. unit tests -----------------------------------------------------------------
log "level 1: pure-Rust unit tests (cargo test --workspace --lib: the core crate needs no Postgres)"
cargo test --workspace --lib --no-fail-fast -- --skip tests::pg_ 2>&1 | tee "$work/unit.log" | grep -E '^(test |error|warning: unused)' | grep -v ' ok$' || true
read -r p f < <(cargo_counts "$work/unit.log")
grep -q '^test result:' "$work/unit.log" || f=$((f + 1))
record unit "$p" "$f"

# --- 2. #[pg_test] -------------------------------------------------------------------
# run_pg_test LEVEL MAJOR PG_CONFIG: the #[pg_test] functions inside a temporary server of that
# major (cargo pgrx test), as the postgres OS user when root; records LEVEL. pgrx keeps its test
# server's log in memory and prints it for a failing test; a crashed backend fails the test
# whose connection it served, and the scan reads what pgrx printed.
run_pg_test() {
  local level=$1 v=$2 data="$work/pgrx-test-pgdata-$2" runas=() rc p f
  if [ "$(id -u)" = 0 ]; then install -d -o postgres -g postgres "$data"; runas=(--runas postgres --pgdata "$data"); fi
  # cargo pgrx test installs its test build over the installed library in place: detached
  # first, so a server that has the library loaded keeps its own copy.
  detach_library "$3"
  cargo pgrx test "pg$v" ::pg_ "${runas[@]}" </dev/null >"$work/pgtest-$v.log" 2>&1
  rc=$?
  sed 's/\x1b\[[0-9;]*m//g' "$work/pgtest-$v.log" > "$work/pgtest-$v.clean.log"
  grep -E '^test .* (FAILED|ignored)$|^error|panicked|^warning' "$work/pgtest-$v.clean.log" | head -40
  read -r p f < <(cargo_counts "$work/pgtest-$v.clean.log")
  if [ "$rc" != 0 ] && [ "$f" = 0 ]; then f=1; tail -n 40 "$work/pgtest-$v.clean.log"; fi
  record "$level" "$p" "$f"
  crash_check "$level" "$work/pgtest-$v.clean.log"
}

log "level 2: in-database tests (cargo pgrx test pg$PG_MAJOR)"
run_pg_test pg_test "$PG_MAJOR" "$PG_CONFIG"

# --- 3 and 4 need the release build in a real cluster -------------------------------
install_extension "$work/install.log"
export MFA_AUTH_LOG_DIR="$work/logs"
mkdir -p "$MFA_AUTH_LOG_DIR"

# run_regress LEVEL PORT OVERLAY...: pg_regress against the cluster on PORT (the server of
# $PG_BIN); records LEVEL. The expected outputs are tests/pg_regress/expected/*.out (the
# keyfile configuration on PostgreSQL 15), each replaced by expected/OVERLAY/NAME.out, in
# order, where a configuration (nokey, ...) or a major version (pg18, ...) differs: one
# expected output per test, configuration and version, none picked by best match.
run_regress() {
  local level=$1 port=$2; shift 2
  local out="$root/target/pg_regress/$level" overlay
  local regress_dir="$root/tests/pg_regress" tests total f rg_rc input="$work/regress-input-$1"
  tests=$(cd "$regress_dir/sql" && ls *.sql | sed 's/\.sql$//' | grep -vx setup | sort | tr '\n' ' ')
  rm -rf "$out" "$input"; mkdir -p "$out" "$input/expected"
  ln -s "$regress_dir/sql" "$input/sql"
  cp "$regress_dir"/expected/*.out "$input/expected/"
  for overlay in "$@"; do
    if [ -d "$regress_dir/expected/$overlay" ]; then cp "$regress_dir/expected/$overlay"/*.out "$input/expected/"; fi
  done
  ( cd "$input" && "$("$PG_BIN/pg_config" --pkglibdir)/pgxs/src/test/regress/pg_regress" \
      --host=127.0.0.1 --port="$port" --user=postgres --dbname=mfa_auth_regress \
      --inputdir=. --outputdir="$out" setup $tests ) >"$work/$level.log" 2>&1
  rg_rc=$?
  grep -E '^(ok|not ok|test |     ?[a-z_]+ +\.\.\.)|tests? (passed|failed)' "$work/$level.log"
  total=$(($(echo "$tests" | wc -w) + 1))
  f=$(grep -cE '^not ok|\.\.\. FAILED|  FAILED' "$work/$level.log")
  if [ "$rg_rc" != 0 ]; then
    [ -f "$out/regression.diffs" ] && head -c 20000 "$out/regression.diffs"
    [ "$f" = 0 ] && f=1
  fi
  record "$level" $((total - f)) "$f"
}

# run_e2e LEVEL PYTEST-ARGS...: pytest over TCP against $PGHOST:$PGPORT; records LEVEL.
run_e2e() {
  local level=$1; shift
  "$root/.venv/bin/python" -m pytest -q -s -p no:cacheprovider "$@" 2>&1 | tee "$work/$level.log" | tail -n 25
  read -r p f < <(python3 - "$work/$level.log" <<'PY'
import re, sys
text = open(sys.argv[1]).read().splitlines()
last = [l for l in text if re.search(r"\d+ (passed|failed|error)", l)]
line = last[-1] if last else ""
g = lambda w: sum(int(n) for n in re.findall(r"(\d+) " + w, line))
p, f = g("passed"), g("failed") + g("error")
print(p, f if (p or f) else 1)
PY
)
  record "$level" "$p" "$f"
}

port=$(free_port)
log "starting a throwaway cluster on 127.0.0.1:$port (configuration keyfile: preloaded, a key file)"
MFA_AUTH_CONFIG=keyfile start_cluster "$work/cluster" "$port"
export PGHOST=127.0.0.1 PGPORT=$port PGUSER=postgres MFA_AUTH_CONFIG=keyfile

log "level 3: SQL regression tests (pg_regress)"
run_regress pg_regress "$port" keyfile
crash_check pg_regress "$work/cluster/server.log"

log "level 4: end-to-end client tests (pytest over TCP)"
rm -f "$MFA_AUTH_LOG_DIR"/*.log
run_e2e e2e "$root/tests/e2e"
crash_check e2e "$work/cluster/server.log" "$MFA_AUTH_LOG_DIR"/*.log

log "level 4b: the example pgTAP suite with mfa_auth_test (examples/pgtap/run.sh: pg_prove, then a broken policy that must fail)"
bash "$root/examples/pgtap/run.sh" >"$work/pgtap.log" 2>&1
grep -vE '^\s*$' "$work/pgtap.log" | tail -n 45
read -r p f < <(sed -n 's/^pgtap: \([0-9]*\) passed, \([0-9]*\) failed$/\1 \2/p' "$work/pgtap.log"; echo)
record pgtap "${p:-0}" "${f:-1}"
crash_check pgtap "$work/cluster/server.log"
stop_cluster "$work/cluster"

log "level 5: crash invariants under verification load (tests/crash/run.sh)"
bash "$root/tests/crash/run.sh" 3 6 >"$work/crash.log" 2>&1
crash_rc=$?
tail -n 32 "$work/crash.log"
if [ "$crash_rc" = 0 ]; then record crash 1 0; else record crash 0 1; fi
# (tests/crash/run.sh scans its own log, leaving out the backends it killed on purpose.)
log "level 5: a running server while the library is reinstalled (tests/crash/reinstall.sh)"
bash "$root/tests/crash/reinstall.sh" >"$work/reinstall.log" 2>&1
reinstall_rc=$?
grep -vE '^\s*$' "$work/reinstall.log" | tail -n 12
if [ "$reinstall_rc" = 0 ]; then record reinstall 1 0; else record reinstall 0 1; fi

log "level 6: upgrade from the last release (tests/upgrade/run.sh)"
bash "$root/tests/upgrade/run.sh" >"$work/upgrade.log" 2>&1
upgrade_rc=$?
grep -vE '^\s*$' "$work/upgrade.log" | tail -n 40
if [ "$upgrade_rc" = 0 ]; then record upgrade 1 0; else record upgrade 0 1; fi

log "level 7: the other configurations (pg_regress and the e2e flow and configuration tests in each)"
for config in $CONFIGS; do
  [ "$config" = keyfile ] && continue
  cport=$(free_port)
  MFA_AUTH_CONFIG=$config start_cluster "$work/cluster-$config" "$cport"
  rm -f "$MFA_AUTH_LOG_DIR"/*.log
  log "configuration $config on 127.0.0.1:$cport"
  PGPORT=$cport run_regress "regress_$config" "$cport" "$config"
  PGPORT=$cport MFA_AUTH_CONFIG=$config run_e2e "e2e_$config" \
    "$root/tests/e2e/test_flow.py" "$root/tests/e2e/test_configurations.py" "$root/tests/e2e/test_session.py" \
    "$root/tests/e2e/test_hooks.py"
  stop_cluster "$work/cluster-$config"
  crash_check "e2e_$config" "$work/cluster-$config/server.log"
done

log "level 8: a streaming standby (tests/standby)"
rm -f "$MFA_AUTH_LOG_DIR"/*.log
run_e2e standby "$root/tests/standby"
crash_check standby "$MFA_AUTH_LOG_DIR"/*.log

log "level 8b: failover under pg_auto_failover (tests/failover/run.sh: monitor + 2 nodes, the primary killed under load, twice)"
rm -f "$MFA_AUTH_LOG_DIR"/*.log
t8b=$(date +%s)
bash "$root/tests/failover/run.sh" >"$work/failover.log" 2>&1
grep -E '^(  |==|failover:|Traceback|[A-Za-z]+Error)' "$work/failover.log" | tail -n 45
read -r p f < <(sed -n 's/^failover: \([0-9]*\) passed, \([0-9]*\) failed$/\1 \2/p' "$work/failover.log"; echo)
record failover "${p:-0}" "${f:-1}"
# Every node's server log, the killed primaries' included (a SIGKILL of the postmaster leaves
# no crash line: it is gone before it could write one).
crash_check failover "$MFA_AUTH_LOG_DIR"/failover-*.log
echo "  level 8b took $(( $(date +%s) - t8b ))s"

# --- 9. other PostgreSQL majors -------------------------------------------------------------
# run_version MAJOR BIN: the in-database suites (#[pg_test], pg_regress), the e2e flow,
# session and configuration tests on that server, and pg_upgrade from 15 to it.
run_version() {
  local v=$1 PG_BIN=$2 vport p f
  log "PostgreSQL $v: #[pg_test] (cargo pgrx test pg$v)"
  run_pg_test "pg_test_pg$v" "$v" "$PG_BIN/pg_config"
  if ! ( PG_CONFIG=$PG_BIN/pg_config install_extension "$work/install-$v.log" ); then
    record "install_pg$v" 0 1; return
  fi
  vport=$(free_port)
  MFA_AUTH_CONFIG=keyfile start_cluster "$work/cluster-pg$v" "$vport"
  rm -f "$MFA_AUTH_LOG_DIR"/*.log
  PGPORT=$vport run_regress "regress_pg$v" "$vport" "pg$v"
  PGPORT=$vport MFA_AUTH_CONFIG=keyfile MFA_AUTH_PG_BIN=$PG_BIN run_e2e "e2e_pg$v" \
    "$root/tests/e2e/test_flow.py" "$root/tests/e2e/test_session.py" "$root/tests/e2e/test_configurations.py" \
    "$root/tests/e2e/test_hooks.py"
  stop_cluster "$work/cluster-pg$v"
  crash_check "e2e_pg$v" "$work/cluster-pg$v/server.log" "$MFA_AUTH_LOG_DIR"/*.log
  log "PostgreSQL $v: pg_upgrade from $PG_MAJOR (tests/versions/pg_upgrade.sh)"
  if bash "$root/tests/versions/pg_upgrade.sh" "/usr/lib/postgresql/$PG_MAJOR/bin" "$PG_BIN" >"$work/pgupgrade-$v.log" 2>&1; then
    record "pg_upgrade_${PG_MAJOR}_$v" 1 0
  else
    record "pg_upgrade_${PG_MAJOR}_$v" 0 1
  fi
  grep -vE '^\s*$' "$work/pgupgrade-$v.log" | tail -n 12
  log "PostgreSQL $v: the release path 0.1.0 -> 0.2.0 -> this build (tests/upgrade/run.sh)"
  if MFA_AUTH_PG_BIN=$PG_BIN bash "$root/tests/upgrade/run.sh" >"$work/upgrade-$v.log" 2>&1; then
    record "upgrade_pg$v" 1 0
  else
    record "upgrade_pg$v" 0 1
  fi
  grep -vE '^\s*$' "$work/upgrade-$v.log" | tail -n 8
}

majors=$CI_MAJORS
[ "$all_versions" = 1 ] && majors=$EXTRA_MAJORS
for v in $majors; do
  log "level 9: PostgreSQL $v (built once from Debian's source package: scripts/pg-build.sh)"
  if vbin=$(bash "$here/pg-build.sh" "$v" 2>"$work/pgbuild-$v.log"); then
    run_version "$v" "$vbin"
  else
    tail -n 30 "$work/pgbuild-$v.log"; record "build_pg$v" 0 1
  fi
done

# --- 10. the Debian packages ---------------------------------------------------------------
# scripts/package.sh builds one per major (15, and each of $majors from its source build) and
# the 0.1.0, 0.2.0 and 0.3.0 releases' for 15; lintian checks each (no error allowed; its warnings are
# listed in docs/packaging.md); tests/package/run.sh installs them with apt-get, with no cargo and
# no rustc on PATH, and runs the e2e flow, remove/reinstall and package upgrades against them.
log "level 10: the Debian packages (scripts/package.sh, lintian, tests/package/run.sh)"
t10=$(date +%s)
debs="$work/debs" olddebs="$work/debs-old"
pkg_passed=0 pkg_failed=0
pkg15=
for v in "$PG_MAJOR" $majors; do
  if [ "$v" = "$PG_MAJOR" ]; then vconfig=$PG_CONFIG; else vconfig="$(pg_cache)/$v/bin/pg_config"; fi
  if d=$(bash "$here/package.sh" --pg-config "$vconfig" --out-dir "$debs" 2>"$work/package-$v.log"); then
    pkg_passed=$((pkg_passed + 1))
    [ "$v" = "$PG_MAJOR" ] && pkg15=$d
    if lintian --fail-on error "$d" >"$work/lintian-$v.log" 2>&1; then pkg_passed=$((pkg_passed + 1)); else pkg_failed=$((pkg_failed + 1)); fi
    echo "  $(basename "$d"): $(stat -c %s "$d") bytes; lintian: $(grep -cE '^E:' "$work/lintian-$v.log") errors, $(grep -cE '^W:' "$work/lintian-$v.log") warnings"
    grep -E '^[EW]:' "$work/lintian-$v.log" | sed 's/^/    /'
    dpkg-deb --fsys-tarfile "$d" | tar -xO --wildcards '*/mfa_auth.so' | sha256sum | sed 's/ .*//; s/^/    mfa_auth.so sha256 /'
  else
    pkg_failed=$((pkg_failed + 1)); tail -n 20 "$work/package-$v.log"
  fi
done
(cd "$debs" && cat SHA256SUMS) 2>/dev/null | sed 's/^/  SHA256SUMS: /'
for release in 0.1.0:a62b950 0.2.0:cd247ca 0.3.0:e3bbadd; do
  if bash "$here/package.sh" --commit "${release#*:}" --out-dir "$olddebs" >/dev/null 2>"$work/package-${release%%:*}.log"; then
    pkg_passed=$((pkg_passed + 1))
  else
    pkg_failed=$((pkg_failed + 1)); tail -n 20 "$work/package-${release%%:*}.log"
  fi
done
record packages "$pkg_passed" "$pkg_failed"
if [ -n "$pkg15" ]; then
  # Without ~/.cargo/bin on PATH: nothing of Rust for the install and the tests.
  nocargo=$(echo "$PATH" | tr ':' '\n' | grep -v '\.cargo/bin' | paste -sd: -)
  PATH=$nocargo bash "$root/tests/package/run.sh" "$pkg15" "$olddebs" >"$work/package-install.log" 2>&1
  grep -vE '^\s*$' "$work/package-install.log" | tail -n 60
  read -r p f < <(sed -n 's/^package: \([0-9]*\) passed, \([0-9]*\) failed$/\1 \2/p' "$work/package-install.log" | tail -n 1)
  record package_install "${p:-0}" "${f:-1}"
else
  record package_install 0 1
fi
echo "  level 10 took $(( $(date +%s) - t10 ))s"

elapsed=$(( $(date +%s) - t0 ))
echo
echo "=================== mfa_auth test summary ==================="
tp=0; tf=0
for level in "${levels[@]}"; do
  printf '  %-16s %4s passed, %s failed\n' "$level" "${passed[$level]}" "${failed[$level]}"
  tp=$((tp + passed[$level])); tf=$((tf + failed[$level]))
done
echo "  wall time  ${elapsed}s"
echo "============================================================="
echo "total: $tp passed, $tf failed"
exit $status
