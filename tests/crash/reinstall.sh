#!/usr/bin/env bash
# A running server survives a reinstall of the library it has loaded: a cluster (preloaded,
# autovacuum every second, a client verifying in a loop) stays up while
#   (a) detach_library is followed by another build written over the installed file in place,
#       as `cargo pgrx test` does when it installs its test build (first: the cluster has the
#       installed file itself mapped), then the release build put back by rename;
#   (b) scripts' install_extension installs the release build again (atomic renames).
# Without them, the library's pages change under the running processes: the autovacuum
# launcher died with SIGILL or SIGSEGV and the postmaster restarted every connection.
# Expects the working tree's release build installed (scripts/test.sh does it first).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
. "$root/scripts/lib.sh"
ensure_cargo_path

dir=$(mktemp -d /tmp/mfa_auth-reinstall.XXXXXX)
chmod 755 "$dir"
port=$(free_port)
so="$("$PG_CONFIG" --pkglibdir)/mfa_auth.so"
loop_pid=
trap '[ -n "$loop_pid" ] && kill "$loop_pid" 2>/dev/null; stop_cluster "$dir/cluster"; rm -rf "$dir"' EXIT
start_cluster "$dir/cluster" "$port" "autovacuum_naptime=1"
export PGHOST=127.0.0.1 PGPORT=$port PGUSER=postgres
psql -X -q -v ON_ERROR_STOP=1 -d postgres -c "CREATE EXTENSION mfa_auth" >/dev/null
start_pid=$(psql -X -At -d postgres -c "SELECT pg_postmaster_start_time()")

# A client that enrolls, challenges and verifies (a wrong code) in a loop until stopped.
(
  while true; do
    psql -X -q -At -v ON_ERROR_STOP=1 -d postgres -c "SELECT auth.verify_challenge(challenge_id, '000000')
        FROM auth.create_challenge((SELECT factor_id FROM auth.enroll_totp(gen_random_uuid())), '10.0.0.1')" \
      >/dev/null || { echo "the client's statement failed" >"$dir/client.failed"; exit 1; }
  done
) &
loop_pid=$!
sleep 2

log "(a) detach_library, then another build written over the installed file in place (as cargo pgrx test does)"
cp "$so" "$dir/release.so"
other="$root/target/debug/libmfa_auth.so"  # the #[pg_test] build: other bytes than the release one
[ -f "$other" ] || die "no debug build at $other (scripts/test.sh builds it at level 2)"
cmp -s "$other" "$so" && die "the debug and release builds are the same file"
detach_library "$PG_CONFIG"
as_root cp "$other" "$so"   # opens the installed path and rewrites it: the new inode
sleep 3
# The release build back, by rename.
as_root install -m 755 "$dir/release.so" "$so.mfa_auth-new" && as_root mv -f "$so.mfa_auth-new" "$so"

log "(b) install_extension while the cluster runs"
install_extension "$dir/install.log"
sleep 3
kill "$loop_pid" 2>/dev/null || true
wait "$loop_pid" 2>/dev/null || true
loop_pid=
[ ! -f "$dir/client.failed" ] || die "$(cat "$dir/client.failed") while the library was reinstalled"
now=$(psql -X -At -d postgres -c "SELECT pg_postmaster_start_time()")
verified=$(psql -X -At -d postgres -c "SELECT count(*) FROM auth.mfa_challenges")
scan_logs "$dir/cluster/server.log" || die "the server crashed while the library was reinstalled"
[ "$now" = "$start_pid" ] || die "the postmaster restarted"
echo "reinstall under load: $verified challenges made and verified meanwhile, no crash, the same postmaster"
