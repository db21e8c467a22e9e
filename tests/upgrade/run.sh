#!/usr/bin/env bash
# The upgrade test: every release path users take to this build, each ending in
# `ALTER EXTENSION mfa_auth UPDATE`:
#   chain:  a 0.1.0 database, updated to 0.2.0 on the 0.2.0 library, then to this build;
#   direct: a 0.2.0 database (with recovery codes), updated to this build.
# For each it requires
#   (a) a catalog snapshot of schema auth identical to a fresh CREATE EXTENSION of this build;
#   (b) the old data working: the TOTP factor verifies with an oathtool code, the aal2 session
#       stays aal2, the open phone challenge verifies, an old recovery code recovers a session;
#   (c) the old release's dump restoring with pg_restore into a fresh database on this build,
#       its factors verifying there;
# and, before the update, the old SQL running on this build's library (every C symbol it
# names is exported, with the old shape).
# Expects the working tree's build installed (scripts/test.sh does it first). Each old release
# is built once in a git worktree (`cargo pgrx package`, ~5 minutes) and kept in
# ~/.cache/mfa_auth; libraries are swapped in by atomic rename, and this build's put back.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
. "$root/scripts/lib.sh"
ensure_cargo_path

RELEASES=("0.1.0:a62b950" "0.2.0:cd247ca" "0.3.0:e3bbadd")
NEW_VERSION=$(project_version "$root/Cargo.toml")
pkglibdir=$("$PG_CONFIG" --pkglibdir)
# The server these run on ($MFA_AUTH_PG_BIN, else Debian's 15): each release is built for it.
major=$("$PG_CONFIG" --version | sed 's/^PostgreSQL \([0-9]*\).*/\1/')
extdir="$("$PG_CONFIG" --sharedir)/extension"
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
  rm -rf "$work"
}
trap finish EXIT

# --- the old releases, each built once ----------------------------------------------------
declare -A cache
for release in "${RELEASES[@]}"; do
  version=${release%%:*} commit=${release##*:}
  # (release_build in scripts/lib.sh: built once, shared with scripts/package.sh --commit.)
  package=$(release_build "$commit" "$PG_CONFIG") || die "building $version failed"
  dir=$work/release-$version
  mkdir -p "$dir"
  cp "$(find "$package" -name mfa_auth.so | head -n 1)" "$dir/mfa_auth.so"
  cp "$(find "$package" -name "mfa_auth--$version.sql" | head -n 1)" "$dir/mfa_auth--$version.sql"
  cache[$version]=$dir
  # The old install script sits beside this build's (installing a newer build never removes it).
  as_root install -m 644 "$dir/mfa_auth--$version.sql" "$extdir/mfa_auth--$version.sql"
done
for step in 0.1.0--0.2.0 0.2.0--0.3.0 "0.3.0--$NEW_VERSION"; do
  [ -f "$extdir/mfa_auth--$step.sql" ] || die "mfa_auth--$step.sql is not installed"
done

port=$(free_port)
# Keys in the setting itself: 0.1.0's only way, so what a database made on 0.1.0 has.
export PGHOST=127.0.0.1 PGPORT=$port PGUSER=postgres MFA_AUTH_CONFIG=inline
q() { psql -X -q -A -t -v ON_ERROR_STOP=1 "$@"; }
restart_on() { # library
  stop_cluster "$work/cluster"
  put_library "$1"
  start_cluster "$work/cluster" "$port"
}

# --- 0.1.0: the chain's database, filled and dumped ----------------------------------------
put_library "${cache[0.1.0]}/mfa_auth.so"
start_cluster "$work/cluster" "$port"
q -d postgres -c "CREATE DATABASE chain" >/dev/null
q -d chain -c "CREATE EXTENSION mfa_auth VERSION '0.1.0'" >/dev/null
log "chain: filling a 0.1.0 database"
EXPECT_VERSION=0.1.0 "$python" "$here/check.py" fill "$work/chain.json" chain
"$PG_BIN/pg_dump" -Fc -d chain -f "$work/chain-0.1.0.dump"

# --- 0.2.0: the chain's first update, and the direct path's database ----------------------------
restart_on "${cache[0.2.0]}/mfa_auth.so"
log "chain: ALTER EXTENSION mfa_auth UPDATE TO '0.2.0' (on the 0.2.0 library)"
q -d chain -c "ALTER EXTENSION mfa_auth UPDATE TO '0.2.0'" >/dev/null
EXPECT_VERSION=0.2.0 "$python" "$here/check.py" still "$work/chain.json" chain
q -d postgres -c "CREATE DATABASE direct" >/dev/null
q -d direct -c "CREATE EXTENSION mfa_auth VERSION '0.2.0'" >/dev/null
log "direct: filling a 0.2.0 database"
EXPECT_VERSION=0.2.0 "$python" "$here/check.py" fill "$work/direct.json" direct
"$PG_BIN/pg_dump" -Fc -d direct -f "$work/direct-0.2.0.dump"
# A database installed into a schema auth that its non-superuser owner had created (0.2.0
# accepted that silently): the update must refuse it until a superuser owns the schema.
q -d postgres -c "CREATE ROLE squatter LOGIN" -c "CREATE DATABASE squatted OWNER squatter" >/dev/null
q -U squatter -d squatted -c "CREATE SCHEMA auth" >/dev/null
q -d squatted -c "CREATE EXTENSION mfa_auth VERSION '0.2.0'" >/dev/null

# --- 0.3.0: the last release's own database ---------------------------------------------------
restart_on "${cache[0.3.0]}/mfa_auth.so"
q -d postgres -c "CREATE DATABASE last" >/dev/null
q -d last -c "CREATE EXTENSION mfa_auth VERSION '0.3.0'" >/dev/null
log "last: filling a 0.3.0 database"
EXPECT_VERSION=0.3.0 "$python" "$here/check.py" fill "$work/last.json" last
"$PG_BIN/pg_dump" -Fc -d last -f "$work/last-0.3.0.dump"

# --- this build ------------------------------------------------------------------------------
restart_on "$work/new.so"
# Before the update the 0.2.0 SQL runs on the new library: every C symbol it names is exported,
# with the 0.2.0 shape (attempt_tracking: five columns; create_challenge: four).
cols=$(q -d direct -c "SELECT count(*) FROM jsonb_object_keys((SELECT to_jsonb(t) FROM auth.attempt_tracking() t))")
[ "$cols" = 5 ] || die "0.2.0's auth.attempt_tracking() returned $cols columns on the new library"
# (create_challenge and a wrong code, in transactions rolled back, so the old data stays as it was.)
ccols=$(q -d direct -c "BEGIN" -c "SELECT count(*) FROM jsonb_object_keys((
          SELECT to_jsonb(t) FROM auth.create_challenge((SELECT id FROM auth.mfa_factors WHERE factor_type = 'totp'
                                                          LIMIT 1), '10.0.0.1') t))" -c "ROLLBACK")
[ "$ccols" = 4 ] || die "0.2.0's auth.create_challenge() returned $ccols columns on the new library"
wrong=$(q -d direct -c "BEGIN" -c "SELECT auth.verify_challenge(challenge_id, 'abcdef')
          FROM auth.create_challenge((SELECT id FROM auth.mfa_factors WHERE factor_type = 'totp' LIMIT 1), '10.0.0.1')" \
          -c "ROLLBACK")
[ "$wrong" = f ] || die "a verification on the 0.2.0 SQL and the new library returned '$wrong'"
echo "  the 0.2.0 SQL runs on the new library before the update (attempt_tracking: $cols columns, create_challenge: $ccols, a wrong code: $wrong)"

# The squatted database: the library refuses to run statements there, and so does the update.
if out=$(q -d squatted -c "SELECT auth.enroll_totp(gen_random_uuid())" 2>&1); then
  die "the new library ran in a database whose schema auth belongs to a non-superuser"
fi
echo "$out" | grep -q 'schema "auth" of mfa_auth is not safe to use: it belongs to role "squatter"' \
  || die "unexpected refusal in the squatted database: $out"
if out=$(q -d squatted -c "ALTER EXTENSION mfa_auth UPDATE" 2>&1); then
  die "ALTER EXTENSION UPDATE went through in a database whose schema auth belongs to a non-superuser"
fi
echo "$out" | grep -q 'schema "auth" belongs to role "squatter", which is not a superuser: mfa_auth is not updated' \
  || die "unexpected refusal of the update: $out"
q -d squatted -c "ALTER SCHEMA auth OWNER TO postgres" -c "ALTER EXTENSION mfa_auth UPDATE" >/dev/null
[ "$(q -d squatted -c "SELECT extversion FROM pg_extension WHERE extname = 'mfa_auth'")" = "$NEW_VERSION" ] \
  || die "the squatted database did not update once a superuser owned its schema"
echo "  a 0.2.0 database installed into a schema auth of a non-superuser: the library and the update refuse it (42501) until a superuser owns the schema, then it updates"

q -d postgres -c "CREATE DATABASE fresh" >/dev/null
q -d fresh -c "CREATE EXTENSION mfa_auth" >/dev/null
q -d fresh -f "$here/snapshot.sql" >"$work/fresh.txt"
for db in chain direct last; do
  log "$db: ALTER EXTENSION mfa_auth UPDATE ($(q -d "$db" -c "SELECT extversion FROM pg_extension WHERE extname = 'mfa_auth'") -> $NEW_VERSION)"
  q -d "$db" -c "ALTER EXTENSION mfa_auth UPDATE" >/dev/null
  q -d "$db" -f "$here/snapshot.sql" >"$work/$db.txt"
  if ! diff -u "$work/fresh.txt" "$work/$db.txt" >"$work/$db.diff"; then
    echo "$db: the upgraded catalog differs from a fresh install (- fresh, + upgraded):"
    cat "$work/$db.diff"
    exit 1
  fi
  echo "  $db: catalog snapshot of schema auth: $(wc -l <"$work/fresh.txt") lines, identical after the update and in a fresh install"
  EXPECT_VERSION=$NEW_VERSION "$python" "$here/check.py" upgraded "$work/$db.json" "$db"
done

# --- the test-helper extension on an updated database, as on a fresh one -----------------------
for db in last fresh; do
  q -d "$db" -c "CREATE EXTENSION mfa_auth_test" >/dev/null || die "CREATE EXTENSION mfa_auth_test failed in $db"
  u=$("$python" -c 'import uuid; print(uuid.uuid4())')
  got=$(q -d "$db" -c "BEGIN" -c "SELECT count(*) FROM mfa_test.enroll_totp('$u')" \
          -c "SELECT mfa_test.sign_in('$u', 'postgres') IS NOT NULL" -c "SELECT auth.aal()" \
          -c "SELECT mfa_test.verify('$u')" -c "SELECT auth.aal()" -c "ROLLBACK" | tr '\n' ' ')
  [ "$got" = "1 t aal1 t aal2 " ] || die "mfa_auth_test in $db: enroll, sign in, verify gave '$got'"
  echo "  $db: CREATE EXTENSION mfa_auth_test $(q -d "$db" -c "SELECT extversion FROM pg_extension WHERE extname = 'mfa_auth_test'"); enroll, sign in (aal1), verify (aal2): $got"
done

# --- the old dumps restored into this build --------------------------------------------------
for dump in chain-0.1.0 direct-0.2.0 last-0.3.0; do
  db=restored_${dump%%-*}
  q -d postgres -c "CREATE DATABASE $db" >/dev/null
  # (The dump's CREATE EXTENSION installs this build's version; its data is the old release's.)
  "$PG_BIN/pg_restore" -d "$db" --exit-on-error "$work/$dump.dump"
  EXPECT_VERSION=$NEW_VERSION "$python" "$here/check.py" restored "$work/${dump%%-*}.json" "$db"
done

stop_cluster "$work/cluster"
scan_logs "$work/cluster/server.log" || die "the server log shows a crash"
echo "upgrade 0.1.0 -> 0.2.0 -> 0.3.0 -> $NEW_VERSION, 0.2.0 -> 0.3.0 -> $NEW_VERSION and 0.3.0 -> $NEW_VERSION on PostgreSQL $major: all checks hold"
