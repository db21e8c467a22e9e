#!/usr/bin/env bash
# pg_upgrade of a cluster with mfa_auth and live data from one PostgreSQL major to another:
#   tests/versions/pg_upgrade.sh OLD_BIN NEW_BIN
# (each a PostgreSQL bin directory with this build of mfa_auth installed: scripts/test.sh does
# both). The old cluster (preloaded, a key file) gets a TOTP factor verified with an oathtool
# code, an aal2 session's claims, open TOTP and phone challenges and recovery codes; after
# `pg_upgrade` the new server must verify the old factors, keep the session aal2, take an old
# recovery code, enroll a WebAuthn factor and challenge it, and its catalog of schema auth must
# equal a fresh CREATE EXTENSION on the new major.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
. "$root/scripts/lib.sh"
old_bin=${1:?OLD_BIN} new_bin=${2:?NEW_BIN}
old_major=$("$old_bin/pg_config" --version | sed 's/^PostgreSQL \([0-9]*\).*/\1/')
new_major=$("$new_bin/pg_config" --version | sed 's/^PostgreSQL \([0-9]*\).*/\1/')
[ "$old_major" -lt "$new_major" ] || die "pg_upgrade goes from an older major to a newer one, not $old_major -> $new_major"
python="$root/.venv/bin/python"
version=$(project_version "$root/Cargo.toml")

work=$(mktemp -d /tmp/mfa_auth-pgupgrade.XXXXXX)
chmod 755 "$work"
[ "$(id -u)" = 0 ] && chown postgres:postgres "$work"
port=$(free_port)
finish() {
  for d in old new; do
    [ -f "$work/$d/data/PG_VERSION" ] && { as_cluster_user "$work/bin-$d/pg_ctl" -D "$work/$d/data" -m immediate -w stop >/dev/null 2>&1 || true; }
  done
  rm -rf "$work"
}
trap finish EXIT
ln -s "$old_bin" "$work/bin-old"
ln -s "$new_bin" "$work/bin-new"
export PGHOST=127.0.0.1 PGPORT=$port PGUSER=postgres
q() { psql -X -q -A -t -v ON_ERROR_STOP=1 "$@"; }

# --- the old cluster, filled --------------------------------------------------------------
MFA_AUTH_CONFIG=keyfile PG_BIN=$old_bin start_cluster "$work/old" "$port"
q -d postgres -c "CREATE DATABASE app" >/dev/null
q -d app -c "CREATE EXTENSION mfa_auth" >/dev/null
log "PostgreSQL $old_major: filling a database"
EXPECT_VERSION=$version "$python" "$root/tests/upgrade/check.py" fill "$work/state.json" app
as_cluster_user "$old_bin/pg_ctl" -D "$work/old/data" -m fast -w stop >/dev/null

# --- the new cluster: the same configuration (the same key file), then pg_upgrade -------------
# (18's initdb turns data checksums on by default; pg_upgrade needs the old cluster's setting.)
checksums=()
[ "$new_major" -ge 18 ] && [ "$(as_cluster_user "$old_bin/pg_controldata" "$work/old/data" | sed -n 's/^Data page checksum version: *//p')" = 0 ] \
  && checksums=(--no-data-checksums)
as_cluster_user "$new_bin/initdb" -D "$work/new/data" -U postgres --auth=trust --locale=C.UTF-8 --encoding=UTF8 "${checksums[@]}" \
  >"$work/initdb.log" 2>&1 || { cat "$work/initdb.log"; die "initdb $new_major failed"; }
grep -E "^(shared_preload_libraries|mfa_auth\.)" "$work/old/data/postgresql.conf" \
  | as_cluster_user tee -a "$work/new/data/postgresql.conf" >/dev/null
log "pg_upgrade $old_major -> $new_major"
( cd "$work" && as_cluster_user "$new_bin/pg_upgrade" -b "$old_bin" -B "$new_bin" \
    -d "$work/old/data" -D "$work/new/data" -p "$port" -P "$port" >"$work/pg_upgrade.log" 2>&1 ) \
  || { tail -n 40 "$work/pg_upgrade.log"; find "$work/new/data" -name '*.txt' -path '*pg_upgrade_output*' -exec tail -n 20 {} \; ; die "pg_upgrade failed"; }
grep -E "^Upgrade Complete|^Performing Upgrade" "$work/pg_upgrade.log" | sed 's/^/  /'

# --- the new server ----------------------------------------------------------------------------
PG_BIN=$new_bin start_cluster "$work/new" "$port"
[ "$(q -d app -c "SHOW server_version_num" | cut -c1-2)" = "$new_major" ] || die "not the new server"
EXPECT_VERSION=$version "$python" "$root/tests/upgrade/check.py" upgraded "$work/state.json" app
q -d postgres -c "CREATE DATABASE fresh" >/dev/null
q -d fresh -c "CREATE EXTENSION mfa_auth" >/dev/null
q -d app -f "$root/tests/upgrade/snapshot.sql" >"$work/upgraded.txt"
q -d fresh -f "$root/tests/upgrade/snapshot.sql" >"$work/fresh.txt"
if ! diff -u "$work/fresh.txt" "$work/upgraded.txt" >"$work/catalog.diff"; then
  echo "the catalog after pg_upgrade differs from a fresh install on $new_major (- fresh, + upgraded):"
  cat "$work/catalog.diff"
  exit 1
fi
echo "  catalog snapshot of schema auth after pg_upgrade: $(wc -l <"$work/fresh.txt") lines, identical to a fresh install on $new_major"
as_cluster_user "$new_bin/pg_ctl" -D "$work/new/data" -m fast -w stop >/dev/null
scan_logs "$work/old/server.log" "$work/new/server.log" || die "a server log shows a crash"
echo "pg_upgrade $old_major -> $new_major with mfa_auth $version: all checks hold"
