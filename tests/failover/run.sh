#!/usr/bin/env bash
# Failover under load with pg_auto_failover (tests/failover/failover.py): a monitor and two
# nodes on loopback, mfa_auth preloaded with one key file, synchronous replication; clients
# verifying through the gateway path and an attacker guessing while the primary's keeper and
# postmaster are killed (SIGKILL); the figures of what holds on the new primary, then the old
# primary rejoins and a second failover goes back. Needs Debian's postgresql-15-auto-failover and
# pg-auto-failover-cli (scripts/prereqs.sh). Level 8b of scripts/test.sh, which scans every
# node's server log (kept in $MFA_AUTH_LOG_DIR as failover-*.log) for crashes.
set -uo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
command -v pg_autoctl >/dev/null || { echo "pg_autoctl is not installed (apt install pg-auto-failover-cli postgresql-15-auto-failover)"; exit 2; }
exec "$root/.venv/bin/python" "$here/failover.py" "$@"
