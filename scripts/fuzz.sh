#!/usr/bin/env bash
# Coverage-guided fuzzing of the pure-Rust core with cargo-fuzz (libFuzzer). Not part of the
# test command. Installs cargo-fuzz if missing; this machine's stable toolchain builds it with
# RUSTC_BOOTSTRAP=1.
#   scripts/fuzz.sh                 10 000 000 executions per target
#   scripts/fuzz.sh --runs N        N executions per target
#   scripts/fuzz.sh --seconds S     S seconds per target
# Targets: base32_decode, otpauth_parse, code_normalize, sealed_open, webauthn_parse, sha1_lanes
# (fuzz/fuzz_targets). Seeds in
# fuzz/corpus/<target>/seed-*; what libFuzzer adds there is not committed.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)
. "$here/lib.sh"
ensure_cargo_path
limit=(-runs=10000000)
case "${1:-}" in
  --runs) limit=(-runs="$2") ;;
  --seconds) limit=(-max_total_time="$2") ;;
  "") ;;
  *) die "usage: scripts/fuzz.sh [--runs N | --seconds S]" ;;
esac
cargo fuzz --version >/dev/null 2>&1 || cargo install --locked cargo-fuzz
cd "$root"
export RUSTC_BOOTSTRAP=1
cargo fuzz build --fuzz-dir fuzz -O >/dev/null
status=0
for target in base32_decode otpauth_parse code_normalize sealed_open webauthn_parse sha1_lanes; do
  log=$(mktemp)
  if cargo fuzz run --fuzz-dir fuzz -O "$target" -- "${limit[@]}" -print_final_stats=1 >"$log" 2>&1; then
    crashes=0
  else
    crashes=1; status=1
    tail -n 30 "$log"
  fi
  runs=$(grep -oE 'stat::number_of_executed_units: *[0-9]+' "$log" | grep -oE '[0-9]+$' || echo 0)
  secs=$(grep -oE 'Done [0-9]+ runs in [0-9]+ second' "$log" | grep -oE 'in [0-9]+' | grep -oE '[0-9]+' || echo "?")
  cov=$(grep -oE 'cov: [0-9]+' "$log" | tail -n 1 | grep -oE '[0-9]+' || echo "?")
  printf 'FUZZ %-15s executions %12s  seconds %5s  coverage %5s  crashes %s\n' "$target" "$runs" "$secs" "$cov" "$crashes"
  rm -f "$log"
done
exit $status
