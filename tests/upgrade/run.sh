#!/usr/bin/env bash
# The upgrade test: a database of the last release (0.1.0, commit a62b950), filled and dumped,
# then the working tree's build installed and `ALTER EXTENSION mfa_auth UPDATE` run. Requires:
#   (a) a catalog snapshot of schema auth identical to a fresh CREATE EXTENSION of this build;
#   (b) the old data working: the TOTP factor verifies with an oathtool code, the aal2 session
#       stays aal2, the open phone challenge verifies;
#   (c) the old dump restoring with pg_restore into a fresh database on this build, its
#       factors verifying there.
# Expects the working tree's build installed (scripts/test.sh does it first). The old release
# is built once in a git worktree (`cargo pgrx package`, ~5 minutes) and kept in
# ~/.cache/mfa_auth; its library is swapped in by atomic rename, and this build's put back.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
. "$root/scripts/lib.sh"
ensure_cargo_path

OLD_VERSION=0.1.0
OLD_COMMIT=a62b950
NEW_VERSION=$(sed -n 's/^version = "\(.*\)"/\1/p' "$root/Cargo.toml" | head -n 1)
pkglibdir=$("$PG_CONFIG" --pkglibdir)
extdir="$("$PG_CONFIG" --sharedir)/extension"
cache="${MFA_AUTH_CACHE:-$HOME/.cache/mfa_auth}/$OLD_VERSION-$OLD_COMMIT"
python="$root/.venv/bin/python"

work=$(mktemp -d /tmp/mfa_auth-upgrade.XXXXXX)
chmod 755 "$work"
[ -f "$pkglibdir/mfa_auth.so" ] || die "install this build first (scripts/test.sh does)"
cp "$pkglibdir/mfa_auth.so" "$work/new.so"

# Puts a library in place by atomic rename: backends that have the old file mapped keep it.
put_library() { as_root install -m 755 "$1" "$pkglibdir/.mfa_auth.so.new" && as_root mv -f "$pkglibdir/.mfa_auth.so.new" "$pkglibdir/mfa_auth.so"; }
finish() {
  stop_cluster "$work/cluster"
  put_library "$work/new.so" || true
  git -C "$root" worktree remove --force "$work/old" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap finish EXIT

# --- the old release, built once -------------------------------------------------------------
if [ ! -f "$cache/mfa_auth.so" ] || [ ! -f "$cache/mfa_auth--$OLD_VERSION.sql" ]; then
  log "building mfa_auth $OLD_VERSION ($OLD_COMMIT) in a git worktree (once; cached in $cache)"
  git -C "$root" worktree add --detach "$work/old" "$OLD_COMMIT" >/dev/null
  mkdir -p "$cache"
  ( cd "$work/old" && CARGO_TARGET_DIR="$cache/target" \
      cargo pgrx package --pg-config "$PG_CONFIG" --out-dir "$cache/package" ) >"$work/old-build.log" 2>&1 \
    || { tail -n 40 "$work/old-build.log"; die "building $OLD_VERSION failed"; }
  cp "$(find "$cache/package" -name mfa_auth.so | head -n 1)" "$cache/mfa_auth.so"
  cp "$(find "$cache/package" -name "mfa_auth--$OLD_VERSION.sql" | head -n 1)" "$cache/mfa_auth--$OLD_VERSION.sql"
  rm -rf "$cache/target"  # ~2 GB of intermediate files; the two files above are all that is needed
fi
# The old install script sits beside this build's (installing a newer build never removes it).
as_root install -m 644 "$cache/mfa_auth--$OLD_VERSION.sql" "$extdir/mfa_auth--$OLD_VERSION.sql"
[ -f "$extdir/mfa_auth--$OLD_VERSION--$NEW_VERSION.sql" ] || die "mfa_auth--$OLD_VERSION--$NEW_VERSION.sql is not installed"

# --- a cluster on the old library, filled and dumped -----------------------------------------
put_library "$cache/mfa_auth.so"
port=$(free_port)
export PGHOST=127.0.0.1 PGPORT=$port PGUSER=postgres
start_cluster "$work/cluster" "$port" "shared_preload_libraries=mfa_auth"
psql -X -q -v ON_ERROR_STOP=1 -d postgres -c "CREATE DATABASE old" >/dev/null
psql -X -q -v ON_ERROR_STOP=1 -d old -c "CREATE EXTENSION mfa_auth VERSION '$OLD_VERSION'" >/dev/null
log "filling a $OLD_VERSION database"
"$python" "$here/check.py" fill "$work/state.json" old
/usr/lib/postgresql/$PG_MAJOR/bin/pg_dump -Fc -d old -f "$work/old.dump"

# --- this build: the update, a fresh install, and the comparison -----------------------------
stop_cluster "$work/cluster"
put_library "$work/new.so"
start_cluster "$work/cluster" "$port" "shared_preload_libraries=mfa_auth"
# Before the update the old SQL runs on the new library: every C symbol it names is exported,
# with the old shape (attempt_tracking: four columns).
cols=$(psql -X -q -A -t -v ON_ERROR_STOP=1 -d old -c "SELECT count(*) FROM jsonb_object_keys((SELECT to_jsonb(t) FROM auth.attempt_tracking() t))")
[ "$cols" = 4 ] || die "the old auth.attempt_tracking() returned $cols columns on the new library"
psql -X -q -A -t -v ON_ERROR_STOP=1 -d old -c "SELECT auth.totp_generate('JBSWY3DPEHPK3PXP', to_timestamp(0))" >/dev/null
# (create_challenge: three columns; in a transaction rolled back, so the old data stays as it was.)
ccols=$(psql -X -q -A -t -v ON_ERROR_STOP=1 -d old -c "BEGIN" -c "SELECT count(*) FROM jsonb_object_keys((
          SELECT to_jsonb(t) FROM auth.create_challenge((SELECT id FROM auth.mfa_factors WHERE factor_type = 'totp'
                                                          LIMIT 1), '10.0.0.1') t))" -c "ROLLBACK")
[ "$ccols" = 3 ] || die "the old auth.create_challenge() returned $ccols columns on the new library"
# (and a verification runs: a wrong code is counted, rolled back too.)
wrong=$(psql -X -q -A -t -v ON_ERROR_STOP=1 -d old -c "BEGIN" -c "SELECT auth.verify_challenge(challenge_id, 'abcdef')
          FROM auth.create_challenge((SELECT id FROM auth.mfa_factors WHERE factor_type = 'totp' LIMIT 1), '10.0.0.1')" \
          -c "ROLLBACK")
[ "$wrong" = f ] || die "a verification on the old SQL and the new library returned '$wrong'"
echo "  the $OLD_VERSION SQL runs on the new library before the update (attempt_tracking: $cols columns, create_challenge: $ccols, a wrong code: $wrong)"
log "ALTER EXTENSION mfa_auth UPDATE ($OLD_VERSION -> $NEW_VERSION)"
psql -X -q -v ON_ERROR_STOP=1 -d old -c "ALTER EXTENSION mfa_auth UPDATE" >/dev/null
psql -X -q -v ON_ERROR_STOP=1 -d postgres -c "CREATE DATABASE fresh" >/dev/null
psql -X -q -v ON_ERROR_STOP=1 -d fresh -c "CREATE EXTENSION mfa_auth" >/dev/null
psql -X -q -A -t -v ON_ERROR_STOP=1 -d old -f "$here/snapshot.sql" >"$work/upgraded.txt"
psql -X -q -A -t -v ON_ERROR_STOP=1 -d fresh -f "$here/snapshot.sql" >"$work/fresh.txt"
if ! diff -u "$work/fresh.txt" "$work/upgraded.txt" >"$work/catalog.diff"; then
  echo "the upgraded catalog differs from a fresh install (- fresh, + upgraded):"
  cat "$work/catalog.diff"
  exit 1
fi
echo "  catalog snapshot of schema auth: $(wc -l <"$work/fresh.txt") lines, identical after the update and in a fresh install"
"$python" "$here/check.py" upgraded "$work/state.json" old

# --- the old dump restored into this build ----------------------------------------------------
psql -X -q -v ON_ERROR_STOP=1 -d postgres -c "CREATE DATABASE restored" >/dev/null
/usr/lib/postgresql/$PG_MAJOR/bin/pg_restore -d restored --exit-on-error "$work/old.dump"
"$python" "$here/check.py" restored "$work/state.json" restored
echo "upgrade $OLD_VERSION -> $NEW_VERSION: all checks hold"
