#!/usr/bin/env bash
# Try mfa_auth: installs everything, builds and installs the extension, starts a
# throwaway local cluster on 127.0.0.1:54329 (data in /tmp/mfa_auth-try), creates a
# fresh database `mfa_auth` with the extension, and opens psql in it. Without a
# terminal on stdin it runs scripts/demo.sql instead and exits.
#   scripts/try.sh          try it
#   scripts/try.sh --stop   stop the throwaway cluster
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)
. "$here/lib.sh"
ensure_cargo_path

dir=${MFA_AUTH_TRY_DIR:-/tmp/mfa_auth-try}
port=${MFA_AUTH_TRY_PORT:-54329}
if [ "${1:-}" = "--stop" ]; then stop_cluster "$dir"; echo "stopped the cluster in $dir"; exit 0; fi

bash "$here/prereqs.sh"
cd "$root"
install_extension "$dir.build.log"
log "starting a throwaway cluster in $dir on 127.0.0.1:$port"
# A direct-connection cluster with no pooler in front: each psql connection is its own MFA
# session (mfa_auth.database_sessions, off by default; see the README on poolers).
start_cluster "$dir" "$port" "mfa_auth.database_sessions=on"
psql_args=(-h 127.0.0.1 -p "$port" -U postgres)
psql -X -q "${psql_args[@]}" -d postgres -v ON_ERROR_STOP=1 \
  -c 'DROP DATABASE IF EXISTS mfa_auth WITH (FORCE)' -c 'CREATE DATABASE mfa_auth'
psql -X -q "${psql_args[@]}" -d mfa_auth -v ON_ERROR_STOP=1 -c 'CREATE EXTENSION mfa_auth'
echo "mfa_auth is installed. Connect again with: psql -h 127.0.0.1 -p $port -U postgres mfa_auth"
echo "Stop the cluster with: scripts/try.sh --stop"
if [ -t 0 ]; then
  # Three steps to the first verified factor, shown before the prompt (and the way out).
  cat <<'GREETING'

  Three steps to MFA in this psql session (type them at the prompt):
    1. SELECT qr FROM auth.enroll_my_totp('phone');   -- enroll a TOTP factor
    2. scan the QR code it prints with an authenticator app
    3. SELECT auth.mfa_verify('123456');   -- the code the app shows: t, and SELECT auth.aal() says aal2
  Leave with \q or Ctrl-D.

GREETING
  exec psql "${psql_args[@]}" -d mfa_auth
else
  psql -X "${psql_args[@]}" -d mfa_auth -v ON_ERROR_STOP=1 -f "$here/demo.sql"
fi
