#!/usr/bin/env bash
# RLS overhead benchmark: installs the release build, starts its own throwaway cluster,
# runs bench/rls.py and prints its figures. Not part of the test command.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)
. "$root/scripts/lib.sh"
ensure_cargo_path
bash "$root/scripts/prereqs.sh"
cd "$root"
work=$(mktemp -d /tmp/mfa_auth-bench.XXXXXX); chmod 755 "$work"
trap 'stop_cluster "$work/cluster"; rm -rf "$work"' EXIT
install_extension "$work/install.log"
port=$(free_port)
start_cluster "$work/cluster" "$port" "mfa_auth.database_sessions=on" "shared_buffers=512MB"
PGHOST=127.0.0.1 PGPORT=$port PGUSER=postgres "$root/.venv/bin/python" "$here/rls.py"
