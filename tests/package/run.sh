#!/usr/bin/env bash
# The package level: mfa_auth installed from its Debian package, never from the build.
#   tests/package/run.sh DEB OLD_DIR
# DEB is this build's package for Debian's PostgreSQL 15 (scripts/package.sh); OLD_DIR holds the
# packages of the releases 0.1.0 (a62b950), 0.2.0 (cd247ca) and 0.3.0 (e3bbadd), built the same way. Runs with no
# cargo and no rustc on PATH (scripts/test.sh takes them off), as root (dpkg). In order:
#   1. the files a build put into the server (not a package's) are set aside, so the server has
#      no mfa_auth files; the package goes in with `apt-get install ./…deb`, `dpkg --verify` holds;
#   2. the e2e flow, session and configuration tests against a preloaded cluster with a key file;
#   3. `dpkg -r` removes every file the package put in; the server with the extension created
#      (and preloaded) does not start without them, and starts after a reinstall, its data working;
#   4. package upgrades 0.3.0 and 0.2.0 -> this build: a database made on the old package (a TOTP factor,
#      recovery codes, a WebAuthn key), the package upgraded, a restart, `ALTER EXTENSION mfa_auth
#      UPDATE`: everything verifies, and the catalog equals a fresh install's;
#   5. package upgrade 0.1.0 -> this build: the same, and before the update the library refuses
#      the 0.1.0 database's functions (auth.aal() included) with 55000 and the hint to update.
# At the end the package is removed and the set-aside files are put back.
# The last line is the summary scripts/test.sh reads: "package: P passed, F failed".
set -uo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
. "$root/scripts/lib.sh"
deb=$(readlink -f "${1:?usage: tests/package/run.sh DEB OLD_DIR}") old_dir=$(readlink -f "${2:?OLD_DIR}")
name=$(dpkg-deb -f "$deb" Package)
version=$(project_version "$root/Cargo.toml")
python="$root/.venv/bin/python"
pkglibdir=$("$PG_CONFIG" --pkglibdir)
extdir="$("$PG_CONFIG" --sharedir)/extension"
passed=0 failed=0
ok() { passed=$((passed + 1)); echo "  ok: $*"; }
bad() { failed=$((failed + 1)); echo "  FAILED: $*"; }
check() { # DESCRIPTION COMMAND...: one check
  local what=$1; shift
  if "$@" >"$work/check.log" 2>&1; then ok "$what"; else bad "$what"; sed 's/^/    /' "$work/check.log" | tail -n 30; fi
}

if command -v cargo >/dev/null || command -v rustc >/dev/null; then
  echo "cargo or rustc is on PATH ($(command -v cargo rustc | tr '\n' ' ')): this level installs without Rust"
  echo "package: 0 passed, 1 failed"; exit 1
fi
echo "  no cargo and no rustc on PATH"

work=$(mktemp -d /tmp/mfa_auth-pkgtest.XXXXXX)
chmod 755 "$work"
mkdir -p "$work/aside"
port=$(free_port)
export PGHOST=127.0.0.1 PGPORT=$port PGUSER=postgres
q() { psql -X -q -A -t -v ON_ERROR_STOP=1 "$@"; }
pkg_installed() { dpkg-query -W -f='${Status}' "$name" 2>/dev/null | grep -q 'ok installed'; }
finish() {
  for d in "$work"/cluster-*; do stop_cluster "$d"; done
  pkg_installed && as_root dpkg -r "$name" >/dev/null 2>&1
  # The set-aside files go back by atomic rename (a running server keeps what it mapped).
  for f in "$work"/aside/*; do
    [ -e "$f" ] || continue
    case $f in *.so) dest=$pkglibdir ;; *) dest=$extdir ;; esac
    as_root cp -p "$f" "$dest/.$(basename "$f").new" && as_root mv -f "$dest/.$(basename "$f").new" "$dest/$(basename "$f")"
  done
  rm -rf "$work"
}
trap finish EXIT

# --- 1. a server with no mfa_auth files, then the package -----------------------------------------
pkg_installed && as_root dpkg -r "$name" >/dev/null
for f in "$pkglibdir"/mfa_auth.so "$extdir"/mfa_auth.control "$extdir"/mfa_auth--*.sql \
         "$extdir"/mfa_auth_test.control "$extdir"/mfa_auth_test--*.sql; do
  [ -e "$f" ] || continue
  dpkg -S "$f" >/dev/null 2>&1 && { echo "$f belongs to a package: $(dpkg -S "$f")"; exit 1; }
  as_root mv "$f" "$work/aside/"
done
left=$(ls "$pkglibdir"/mfa_auth* "$extdir"/mfa_auth* 2>/dev/null | wc -l)
echo "  set aside $(ls "$work/aside" | wc -l) files a build had installed; mfa_auth files left in the server: $left"
install_deb() { # DEB: apt-get install of a package file (dependencies from the machine's apt)
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$1" >"$work/apt.log" 2>&1 \
    || { tail -n 20 "$work/apt.log"; return 1; }
  grep -E '^(Unpacking|Setting up|Preparing)' "$work/apt.log" | sed 's/^/    /'
}
check "apt-get install ./$(basename "$deb") into a server with $left mfa_auth files" install_deb "$deb"
dpkg -L "$name" | while read -r f; do [ -f "$f" ] && echo "$f"; done | sort >"$work/files"
check "the package's files are in place and unchanged (dpkg --verify $name)" as_root dpkg --verify "$name"
check "the server's mfa_auth.so is the package's ($(sha256sum <"$pkglibdir/mfa_auth.so" | cut -c1-16))" \
  sh -c "dpkg -S '$pkglibdir/mfa_auth.so' | grep -q '^$name:'"
echo "  the package put in $(wc -l <"$work/files") files:"; sed 's/^/    /' "$work/files"

# --- 2. the e2e flow, session and configuration tests --------------------------------------------
MFA_AUTH_CONFIG=keyfile start_cluster "$work/cluster-e2e" "$port"
"$python" -m pytest -q -s -p no:cacheprovider "$root/tests/e2e/test_flow.py" "$root/tests/e2e/test_session.py" \
  "$root/tests/e2e/test_configurations.py" >"$work/e2e.log" 2>&1
e2e_rc=$?
tail -n 3 "$work/e2e.log"
summary=$(grep -E '[0-9]+ (passed|failed)' "$work/e2e.log" | tail -n 1)
e2e_passed=$(echo "$summary" | grep -oE '[0-9]+ passed' | cut -d' ' -f1)
e2e_failed=$(echo "$summary" | grep -oE '[0-9]+ (failed|errors?)' | awk '{ n += $1 } END { print n + 0 }')
[ "$e2e_rc" = 0 ] || [ "$e2e_failed" -gt 0 ] || e2e_failed=1
passed=$((passed + ${e2e_passed:-0})); failed=$((failed + e2e_failed))
echo "  e2e against the package: ${e2e_passed:-0} passed, $e2e_failed failed"
[ "$e2e_failed" = 0 ] || grep -E '^(FAILED|ERROR)|Error' "$work/e2e.log" | head -n 20

# --- 3. dpkg -r and a reinstall under a server that has the extension ------------------------
q -d postgres -c "CREATE DATABASE kept" && q -d kept -c "CREATE EXTENSION mfa_auth" >/dev/null
secret=$(q -d kept -c "SELECT secret FROM auth.enroll_totp('00000000-0000-4000-8000-000000000001', 'kept')")
stop_cluster "$work/cluster-e2e"
as_root dpkg -r "$name" >/dev/null
still=$(while read -r f; do [ -e "$f" ] && echo "$f"; done <"$work/files")
check "dpkg -r removed all $(wc -l <"$work/files") files it had put in" test -z "$still"
[ -z "$still" ] || echo "$still" | sed 's/^/    left: /'
check "dpkg -r removed the package's doc directory" test ! -e "/usr/share/doc/$name"
if as_cluster_user "$PG_BIN/pg_ctl" -D "$work/cluster-e2e/data" -l "$work/cluster-e2e/removed.log" -w -t 20 \
     -o "-p $port -c listen_addresses=127.0.0.1 -c unix_socket_directories=$work/cluster-e2e" start >/dev/null 2>&1; then
  bad "the preloading server started without the package's library"
  stop_cluster "$work/cluster-e2e"
else
  ok "without the package the preloading server does not start: $(grep -m1 -oE 'could not access file "mfa_auth"[^,]*' "$work/cluster-e2e/removed.log")"
fi
check "reinstalled (apt-get install ./$(basename "$deb"))" install_deb "$deb"
MFA_AUTH_CONFIG=keyfile start_cluster "$work/cluster-e2e" "$port"
code=$(oathtool --totp -b "$secret")
kept_ok() {
  [ "$(q -d kept -c "SELECT auth.verify_challenge(challenge_id, '$code') FROM auth.create_challenge(
        (SELECT id FROM auth.mfa_factors WHERE friendly_name = 'kept'), '10.0.0.1')")" = t ]
}
check "after the remove and reinstall the server starts and the database's TOTP factor verifies (an oathtool code)" kept_ok
stop_cluster "$work/cluster-e2e"
as_root dpkg -r "$name" >/dev/null

# --- 4 and 5. package upgrades from the releases ----------------------------------------------
snapshot() { q -d "$1" -f "$root/tests/upgrade/snapshot.sql"; }
package_upgrade() { # OLD_VERSION CONFIG
  local old=$1 config=$2 olddeb cluster=$work/cluster-$1 db=app
  olddeb=$(ls "$old_dir/${name}_$old-"*.deb 2>/dev/null | head -n 1)
  [ -n "$olddeb" ] || { bad "no $old package in $old_dir"; return; }
  echo "  -- package upgrade $old -> $version ($(basename "$olddeb"), configuration $config)"
  check "apt-get install ./$(basename "$olddeb")" install_deb "$olddeb" || return
  MFA_AUTH_CONFIG=$config start_cluster "$cluster" "$port"
  q -d postgres -c "CREATE DATABASE $db" && q -d "$db" -c "CREATE EXTENSION mfa_auth" >/dev/null
  check "a $old database filled (TOTP, a phone challenge, an aal2 session$([ "$old" = 0.1.0 ] || echo ", recovery codes, a WebAuthn key"))" \
    env EXPECT_VERSION="$old" "$python" "$root/tests/upgrade/check.py" fill "$work/$old.json" "$db"
  sed 's/^/    /' "$work/check.log"
  stop_cluster "$cluster"
  check "apt-get install ./$(basename "$deb") over $old (a package upgrade)" install_deb "$deb"
  start_cluster "$cluster" "$port"
  if [ "$old" = 0.1.0 ]; then
    refused() { # SQL: refused with 55000 and the hint to update
      local out
      out=$(psql -X -q -A -t -d "$db" -v VERBOSITY=verbose -c "$1" 2>&1) && { echo "not refused: $out"; return 1; }
      echo "$out" | head -n 3
      echo "$out" | grep -q '55000: mfa_auth.s objects in this database are at version 0.1.0, which library '"$version"' does not serve' \
        && echo "$out" | grep -q 'HINT:  Run ALTER EXTENSION mfa_auth UPDATE'
    }
    check "before the update, auth.aal() of the 0.1.0 database is refused with 55000 and the hint to update" \
      refused "SELECT auth.aal()"
    sed 's/^/    /' "$work/check.log"
    check "before the update, verify_challenge of the 0.1.0 database is refused the same way" \
      refused "SELECT auth.verify_challenge((SELECT id FROM auth.mfa_challenges LIMIT 1), '000000')"
  else
    session=$("$python" -c 'import json, sys; print(json.load(open(sys.argv[1]))["session"])' "$work/$old.json")
    answers() { [ "$(q -d "$db" -c "SELECT auth.session_aal('$session')")" = aal2 ]; }
    check "before the update, the $old database answers on the new library (its session is aal2)" answers
  fi
  check "ALTER EXTENSION mfa_auth UPDATE ($old -> $version)" q -d "$db" -c "ALTER EXTENSION mfa_auth UPDATE"
  q -d postgres -c "CREATE DATABASE fresh_$config" && q -d "fresh_$config" -c "CREATE EXTENSION mfa_auth" >/dev/null
  snapshot "fresh_$config" >"$work/fresh-$old.txt"
  snapshot "$db" >"$work/upgraded-$old.txt"
  check "the catalog of schema auth after the update equals a fresh $version install ($(wc -l <"$work/fresh-$old.txt") lines)" \
    diff -u "$work/fresh-$old.txt" "$work/upgraded-$old.txt"
  check "the $old data verifies after the update" \
    env EXPECT_VERSION="$version" "$python" "$root/tests/upgrade/check.py" upgraded "$work/$old.json" "$db"
  sed 's/^/    /' "$work/check.log"
  stop_cluster "$cluster"
  if scan_logs "$cluster/server.log"; then ok "no crash in the server log"; else bad "a crash in the server log"; fi
  as_root dpkg -r "$name" >/dev/null
}
package_upgrade 0.3.0 keyfile
package_upgrade 0.2.0 keyfile
# (0.1.0 knew only keys in the setting itself: a database made on it has them there.)
package_upgrade 0.1.0 inline

for d in "$work"/cluster-*; do scan_logs "$d/server.log" || bad "a crash in $d/server.log"; done
echo "package: $passed passed, $failed failed"
[ "$failed" = 0 ]
