# Shared helpers for the project's scripts. Sourced, not executed.
# shellcheck shell=bash

PGRX_VERSION=0.18.1
PG_MAJOR=15
PG_BIN=/usr/lib/postgresql/$PG_MAJOR/bin
PG_CONFIG=$PG_BIN/pg_config

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

# start_cluster DIR PORT [extra postgres -c options...]
# A throwaway cluster in DIR/data, listening on 127.0.0.1:PORT and a socket in DIR,
# run by the cluster user (Postgres refuses root). Re-uses DIR/data when present.
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

# init_cluster DIR: a new cluster in DIR/data (no-op when one is there). A new cluster
# gets a random mfa_auth.encryption_keys master key in its postgresql.conf (readable only
# by the cluster user), so TOTP secrets are encrypted at rest from the start.
init_cluster() {
  local dir=$1
  if [ "$(id -u)" = 0 ]; then install -d -o postgres -g postgres "$dir"; else mkdir -p "$dir"; fi
  [ -f "$dir/data/PG_VERSION" ] && return 0
  as_cluster_user "$PG_BIN/initdb" -D "$dir/data" -U postgres --auth=trust --locale=C.UTF-8 \
    --encoding=UTF8 >"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log" >&2; die "initdb failed"; }
  local key
  key=$(head -c 32 /dev/urandom | base64)
  printf "\n# mfa_auth: master key for TOTP secrets at rest (current key first)\nmfa_auth.encryption_keys = 'k1:%s'\n" "$key" \
    | as_cluster_user tee -a "$dir/data/postgresql.conf" >/dev/null
}

stop_cluster() {
  local dir=$1
  [ -f "$dir/data/PG_VERSION" ] || return 0
  as_cluster_user "$PG_BIN/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true
}

# Builds the release library and installs it into Debian's PostgreSQL.
install_extension() {
  log "building and installing mfa_auth (release) into PostgreSQL $PG_MAJOR"
  local sudo=()
  [ "$(id -u)" = 0 ] || sudo=(--sudo)
  cargo pgrx install --release --pg-config "$PG_CONFIG" "${sudo[@]}" >"${1:-/dev/null}" 2>&1 \
    || { [ -n "${1:-}" ] && tail -n 60 "$1" >&2; die "cargo pgrx install failed"; }
}
