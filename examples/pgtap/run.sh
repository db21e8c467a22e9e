#!/usr/bin/env bash
# The example pgTAP suite (tests/*.sql) against the example app (schema.sql), run by pg_prove
# from Debian's packages, on the cluster of PGHOST/PGPORT (a superuser in PGUSER). Then the same
# suite against a copy of the app whose payments policy is broken (USING (true)): pg_prove must
# fail there. Prints pg_prove's output and, last, "pgtap: P passed, F failed" (the suite passing
# on the app, and failing on the broken copy, are the two checks).
set -uo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
q() { psql -X -q -v ON_ERROR_STOP=1 "$@"; }
passed=0 failed=0
app_db() { # DB [broken]: a fresh database with mfa_auth, pgTAP, mfa_auth_test and the app
  local db=$1
  q -d postgres -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" -c "CREATE DATABASE $db" || return 1
  q -d "$db" <<SQL || return 1
DO \$\$ BEGIN CREATE ROLE authenticated NOLOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END \$\$;
CREATE EXTENSION mfa_auth;
CREATE EXTENSION pgtap;
CREATE EXTENSION mfa_auth_test;
-- The test role calls the helpers after mfa_test.sign_in switched to it (test databases only).
GRANT USAGE ON SCHEMA mfa_test TO authenticated;
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA mfa_test TO authenticated;
\i $here/schema.sql
SQL
  if [ "${2:-}" = broken ]; then
    q -d "$db" -c "ALTER POLICY payments_need_mfa ON app.payments USING (true)" || return 1
  fi
}
run_prove() { # DB: pg_prove's output; its status
  pg_prove -h "${PGHOST:-127.0.0.1}" -p "${PGPORT:-5432}" -U "${PGUSER:-postgres}" -d "$1" --verbose "$here"/tests/*.sql 2>&1
}

echo "== the example app (examples/pgtap/schema.sql)"
if app_db mfa_pgtap_example; then
  out=$(run_prove mfa_pgtap_example); rc=$?
  echo "$out"
  oks=$(grep -cE '^ *ok [0-9]+' <<<"$out"); nots=$(grep -cE '^ *not ok [0-9]+' <<<"$out")
  echo "  pg_prove exit $rc: $oks ok, $nots not ok"
  if [ "$rc" = 0 ] && [ "$nots" = 0 ] && [ "$oks" -gt 0 ]; then passed=$((passed + 1)); else failed=$((failed + 1)); fi
else
  echo "  could not set up the example database"; failed=$((failed + 1))
fi

echo "== the same app with its payments policy broken (USING (true)): pg_prove must fail"
if app_db mfa_pgtap_broken broken; then
  out=$(run_prove mfa_pgtap_broken); rc=$?
  grep -E 'not ok|Failed|Result' <<<"$out" | sed 's/^/  /'
  oks=$(grep -cE '^ *ok [0-9]+' <<<"$out"); nots=$(grep -cE '^ *not ok [0-9]+' <<<"$out")
  echo "  pg_prove exit $rc: $oks ok, $nots not ok"
  if [ "$rc" != 0 ] && [ "$nots" -gt 0 ]; then passed=$((passed + 1)); else failed=$((failed + 1)); fi
else
  echo "  could not set up the broken copy"; failed=$((failed + 1))
fi
q -d postgres -c "DROP DATABASE IF EXISTS mfa_pgtap_example WITH (FORCE)" -c "DROP DATABASE IF EXISTS mfa_pgtap_broken WITH (FORCE)"
echo "pgtap: $passed passed, $failed failed"
[ "$failed" = 0 ]
