# Shared helpers for the project's scripts. Sourced, not executed.
# shellcheck shell=bash

# shellcheck disable=SC2034 # (read by the scripts that source this file)
PGRX_VERSION=0.18.1
PG_MAJOR=15
PG_BIN=${MFA_AUTH_PG_BIN:-/usr/lib/postgresql/$PG_MAJOR/bin}
PG_CONFIG=$PG_BIN/pg_config
export MFA_AUTH_PG_BIN=$PG_BIN  # for the Python tests' own clusters

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# Run a command as root: directly when we are root, else through sudo.
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

# The OS user that owns throwaway clusters: Postgres refuses to run as root.
cluster_user() { if [ "$(id -u)" = 0 ]; then echo postgres; else id -un; fi; }
as_cluster_user() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

# Make sure cargo is on PATH (rustup installs it under ~/.cargo/bin).
ensure_cargo_path() {
  case ":$PATH:" in *":$HOME/.cargo/bin:"*) ;; *) export PATH="$HOME/.cargo/bin:$PATH" ;; esac
  command -v cargo >/dev/null || die "cargo not found: install Rust (rustup) first"
}

# A free TCP port on loopback.
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# The configurations users run, each a kind of throwaway cluster (MFA_AUTH_CONFIG):
#   keyfile    preloaded, master keys in a file (the README's production install; the default)
#   nokey      preloaded, no master key (secrets stored unencrypted, with a WARNING)
#   inline     preloaded, keys in the deprecated mfa_auth.encryption_keys setting
#   nopreload  CREATE EXTENSION only: no shared memory (attempt counts as durable as the
#              caller's transaction), no master key
CONFIGS="keyfile nokey inline nopreload"

# start_cluster DIR PORT [extra postgres -c options...]
# A throwaway cluster in DIR/data, listening on 127.0.0.1:PORT and a socket in DIR,
# run by the cluster user (Postgres refuses root). Re-uses DIR/data when present; a new
# one gets the configuration $MFA_AUTH_CONFIG (see init_cluster).
start_cluster() {
  local dir=$1 port=$2; shift 2
  local opts="-p $port -c listen_addresses=127.0.0.1 -c unix_socket_directories=$dir"
  for o in "$@"; do opts="$opts -c $o"; done
  init_cluster "$dir"
  if as_cluster_user "$PG_BIN/pg_ctl" -D "$dir/data" status >/dev/null 2>&1; then
    as_cluster_user "$PG_BIN/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null
  fi
  # Without RUST_BACKTRACE: the server behaves as in production (no Rust backtraces in errors).
  as_cluster_user env -u RUST_BACKTRACE -u RUST_LIB_BACKTRACE \
    "$PG_BIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -o "$opts" start >/dev/null \
    || { tail -n 30 "$dir/server.log" >&2; die "could not start the cluster in $dir"; }
}

# init_cluster DIR [CONFIG]: a new cluster in DIR/data (no-op when one is there), in
# configuration CONFIG (default $MFA_AUTH_CONFIG, else keyfile), written to its
# postgresql.conf. A key is random, made here, and readable only by the cluster user: in
# DIR/mfa_auth.keys (keyfile) or in postgresql.conf itself (inline).
init_cluster() {
  local dir=$1 config=${2:-${MFA_AUTH_CONFIG:-keyfile}}
  case " $CONFIGS " in *" $config "*) ;; *) die "unknown configuration '$config' (one of: $CONFIGS)" ;; esac
  if [ "$(id -u)" = 0 ]; then install -d -o postgres -g postgres "$dir"; else mkdir -p "$dir"; fi
  [ -f "$dir/data/PG_VERSION" ] && return 0
  as_cluster_user "$PG_BIN/initdb" -D "$dir/data" -U postgres --auth=trust --locale=C.UTF-8 \
    --encoding=UTF8 >"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log" >&2; die "initdb failed"; }
  local key conf
  key=$(head -c 32 /dev/urandom | base64)
  conf="\n# mfa_auth: configuration '$config' (scripts/lib.sh)\n"
  [ "$config" = nopreload ] || conf="${conf}shared_preload_libraries = 'mfa_auth'\n"
  case $config in
    keyfile)
      printf '# mfa_auth master keys, current first\nk1:%s\n' "$key" \
        | as_cluster_user sh -c "umask 077; cat > '$dir/mfa_auth.keys'"
      conf="${conf}mfa_auth.encryption_keys_file = '$dir/mfa_auth.keys'\n" ;;
    inline) conf="${conf}mfa_auth.encryption_keys = 'k1:$key'\n" ;;
  esac
  printf "$conf" | as_cluster_user tee -a "$dir/data/postgresql.conf" >/dev/null
}

# scan_logs FILE...: prints every line of the server logs that says a server process
# crashed, a PANIC or a failed assertion, and fails when there is one. A backend crash is
# followed by automatic recovery, which a client that reconnects would never notice.
CRASH_PATTERN='terminated by signal|terminated by exception|exited with exit code ([2-9]|[1-9][0-9])|PANIC:|TRAP: |failed Assert|all server processes terminated'
# scan_logs [-x REGEX] FILE...: as above; lines matching REGEX (a crash the caller caused on
# purpose, named by its PID) are not counted.
scan_logs() {
  local except='^$' f found=0
  if [ "${1:-}" = -x ]; then except=$2; shift 2; fi
  for f in "$@"; do
    [ -f "$f" ] || continue
    grep -nE "$CRASH_PATTERN" "$f" | grep -vE "$except" >"$f.crashes" || true
    [ -s "$f.crashes" ] || continue
    found=1
    echo "CRASH in server log $f:"
    # Each line with the one after it: Postgres names the crashed backend's statement there
    # ("DETAIL:  Failed process was running: ...").
    cut -d: -f1 "$f.crashes" | head -n 10 | while read -r n; do
      sed -n "${n}p;$((n + 1))p" "$f" | grep -vE '^[^ ]+ [^ ]+ UTC \[[0-9]+\] LOG:  terminating any other' | sed 's/^/    /'
    done
  done
  return $found
}

stop_cluster() {
  local dir=$1
  [ -f "$dir/data/PG_VERSION" ] || return 0
  as_cluster_user "$PG_BIN/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true
}

# Builds the release library and installs it into the PostgreSQL of $PG_CONFIG (Debian's 15
# unless PG_CONFIG says otherwise). Every file goes in by atomic rename, never by writing over
# the installed file: a running server that has the library loaded (a scripts/try.sh cluster,
# say) keeps the pages it mapped. `cargo pgrx install` copies over the file in place, and a
# loaded library overwritten in place crashes the server's processes (seen: its autovacuum
# launcher, SIGILL or SIGSEGV; tests/crash/reinstall.sh). The log goes to $1.
install_extension() {
  local major staging f dest
  major=$("$PG_CONFIG" --version | sed 's/^PostgreSQL \([0-9]*\).*/\1/')
  log "building and installing mfa_auth (release) into PostgreSQL $major"
  staging=$(mktemp -d /tmp/mfa_auth-package.XXXXXX)
  CARGO_TARGET_DIR=$(release_target_dir) cargo pgrx package --pg-config "$PG_CONFIG" --out-dir "$staging" >"${1:-/dev/null}" 2>&1 \
    || { rm -rf "$staging"; [ -n "${1:-}" ] && tail -n 60 "$1" >&2; die "cargo pgrx package failed"; }
  while IFS= read -r f; do
    dest="/${f#./}"
    as_root install -D -m "$([ "${f##*.}" = so ] && echo 755 || echo 644)" "$staging/$f" "$dest.mfa_auth-new" \
      && as_root mv -f "$dest.mfa_auth-new" "$dest" || { rm -rf "$staging"; die "installing $dest failed"; }
  done < <(cd "$staging" && find . -type f)
  rm -rf "$staging"
  # The test-helper extension (plain SQL files beside mfa_auth's).
  local helper_dir ext
  helper_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")/../mfa_auth_test" && pwd)
  ext="$("$PG_CONFIG" --sharedir)/extension"
  for f in "$helper_dir"/mfa_auth_test.control "$helper_dir"/mfa_auth_test--*.sql; do
    as_root install -m 644 "$f" "$ext/$(basename "$f").mfa_auth-new" && as_root mv -f "$ext/$(basename "$f").mfa_auth-new" "$ext/$(basename "$f")" \
      || die "installing $(basename "$f") failed"
  done
}

# release_target_dir: where every release build goes (install_extension, scripts/package.sh),
# whatever the checkout. A build embeds one absolute path, the generated bindings' OUT_DIR
# (panic locations in pgrx-pg-sys's pg15.rs), and the sources by relative path: with one target
# directory, one commit gives the same library bytes in any checkout (docs/packaging.md).
release_target_dir() {
  echo "${MFA_AUTH_RELEASE_TARGET:-$(dirname "$(pg_cache)")/target}"
}

# release_build COMMIT PG_CONFIG: the `cargo pgrx package` output of a release commit for that
# server, built once in a git worktree (in the release target directory) and kept in
# ~/.cache/mfa_auth/VERSION-COMMIT-pgMAJOR/package; prints that directory. Shared by the upgrade
# test (the old libraries and install scripts) and scripts/package.sh --commit (their packages).
release_build() {
  local commit major version staging src log
  commit=$(git -C "$(dirname "${BASH_SOURCE[0]}")/.." rev-parse --short=7 "$1") || return 1
  major=$("$2" --version | sed 's/^PostgreSQL \([0-9]*\).*/\1/')
  src=$(mktemp -d /tmp/mfa_auth-release.XXXXXX) log=$src.log
  git -C "$(dirname "${BASH_SOURCE[0]}")/.." show "$commit:Cargo.toml" >"$src/Cargo.toml" || return 1
  version=$(project_version "$src/Cargo.toml")
  staging="${MFA_AUTH_CACHE:-$HOME/.cache/mfa_auth}/$version-$commit-pg$major/package"
  if [ -z "$(find "$staging" -name mfa_auth.so 2>/dev/null | head -n 1)" ]; then
    log "building mfa_auth $version ($commit) for PostgreSQL $major in a git worktree (once; cached in $staging)"
    git -C "$(dirname "${BASH_SOURCE[0]}")/.." worktree add --detach "$src/tree" "$commit" >/dev/null || return 1
    rm -rf "$staging"
    (cd "$src/tree" && CARGO_TARGET_DIR=$(release_target_dir) \
       cargo pgrx package --pg-config "$2" --out-dir "$staging") >"$log" 2>&1 \
      || { tail -n 60 "$log" >&2; git -C "$(dirname "${BASH_SOURCE[0]}")/.." worktree remove --force "$src/tree"; rm -rf "$src" "$log"; return 1; }
    git -C "$(dirname "${BASH_SOURCE[0]}")/.." worktree remove --force "$src/tree" >/dev/null 2>&1
  fi
  rm -rf "$src" "$log"
  echo "$staging"
}

# detach_library PG_CONFIG: gives the installed mfa_auth.so a new inode with the same bytes
# (copied, then renamed over it) before a tool writes the file in place (`cargo pgrx test`
# installs its test build that way): the running servers keep the old inode they mapped.
detach_library() {
  local f
  f="$("$1" --pkglibdir)/mfa_auth.so"
  [ -f "$f" ] || return 0
  as_root cp -p "$f" "$f.mfa_auth-new" && as_root mv -f "$f.mfa_auth-new" "$f"
}

# Where other PostgreSQL majors are built (scripts/pg-build.sh): readable by the cluster user,
# so not under root's home.
pg_cache() {
  if [ "$(id -u)" = 0 ]; then echo "${MFA_AUTH_PG_CACHE:-/var/cache/mfa_auth/pg}"; else echo "${MFA_AUTH_PG_CACHE:-$HOME/.cache/mfa_auth/pg}"; fi
}

# The majors besides 15 that scripts/pg-build.sh can build, and the ones the test command runs
# by default (scripts/test.sh --all-versions runs them all).
EXTRA_MAJORS="18"
# shellcheck disable=SC2034 # (read by the scripts that source this file)
CI_MAJORS="18"

# pgrx_init: ~/.pgrx/config.toml lists PostgreSQL 15 and every major built into the cache, and
# nothing else (a listed pg_config that is gone breaks every build). `cargo pgrx init` only adds
# to the file, so after its first run (which makes ~/.pgrx) the file is written here, and only
# when it differs: a rewrite makes pgrx-pg-sys rebuild (~2 minutes).
pgrx_init() {
  local want="[configs]"$'\n'"pg$PG_MAJOR = \"$PG_CONFIG\"" v c file="$HOME/.pgrx/config.toml"
  for v in $EXTRA_MAJORS; do
    c="$(pg_cache)/$v/bin/pg_config"
    [ -x "$c" ] && want="$want"$'\n'"pg$v = \"$c\""
  done
  if [ ! -f "$file" ]; then
    log "cargo pgrx init --pg$PG_MAJOR $PG_CONFIG"
    cargo pgrx init --pg$PG_MAJOR "$PG_CONFIG" >/dev/null
  fi
  if [ "$(cat "$file")" != "$want" ]; then
    # shellcheck disable=SC2088 # (a message: the path as users write it)
    log "~/.pgrx/config.toml: $(echo "$want" | sed -n 's/^\(pg[0-9]*\) = .*/\1/p' | tr '\n' ' ')"
    printf '%s\n' "$want" >"$file.new" && mv -f "$file.new" "$file"
  fi
}

# project_version CARGO_TOML: the release version, from the one place it is written
# ([workspace.package] of Cargo.toml; [package] in releases before 0.3.0).
project_version() {
  python3 - "$1" <<'PY'
import sys, tomllib
t = tomllib.load(open(sys.argv[1], "rb"))
v = t.get("workspace", {}).get("package", {}).get("version") or t["package"]["version"]
print(v if isinstance(v, str) else sys.exit("no version in " + sys.argv[1]))
PY
}

# maintainer: who maintains mfa_auth, as META.json says (the packages' Maintainer).
maintainer() {
  python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["maintainer"])' "$(dirname "${BASH_SOURCE[0]}")/../META.json"
}
