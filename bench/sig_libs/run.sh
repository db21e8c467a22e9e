#!/usr/bin/env bash
# ring vs aws-lc-rs for WebAuthn signatures: build time of each alone from a clean target
# directory (dependencies already downloaded), then µs per verification side by side.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cd "$here"
cargo fetch -q
for lib in ring aws-lc-rs; do
  t=$(mktemp -d)
  start=$(date +%s.%N)
  CARGO_TARGET_DIR=$t cargo build -q --release -p "$lib"
  end=$(date +%s.%N)
  printf 'build from clean, %-10s %6.1f s (%s compiled crates)\n' "$lib" "$(awk "BEGIN { print $end - $start }")" \
    "$(ls "$t"/release/deps/*.rlib 2>/dev/null | wc -l)"
  rm -rf "$t"
done
cargo run -q --release
