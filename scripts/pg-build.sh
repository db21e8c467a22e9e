#!/usr/bin/env bash
# Builds a PostgreSQL major version from Debian's source package into a cache that later runs
# reuse, and points `cargo pgrx init` at it. PostgreSQL 15 is Debian 12's own server; other
# majors come from the source packages of other Debian suites, fetched with a private apt
# configuration (its own sources list, package lists and cache under the cache directory), so
# the machine's own package lists, and so its Debian 12 packages, stay as they are.
#   scripts/pg-build.sh MAJOR        prints the bin directory of the built server
# Fast when the cache has it (pg_cache in scripts/lib.sh: /var/cache/mfa_auth/pg/MAJOR as root).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=scripts/lib.sh
. "$here/lib.sh"
ensure_cargo_path

major=${1:?usage: pg-build.sh MAJOR}
cache=$(pg_cache)
prefix="$cache/$major"
# Which suite has which major's source package (postgresql-17's files are not on the mirror).
case $major in
  18) suite=sid ;;
  15) echo "$PG_BIN"; exit 0 ;;
  *) die "PostgreSQL $major: no Debian source package is known to be reachable (18 is; 15 is the system's)" ;;
esac

if [ ! -x "$prefix/bin/pg_config" ]; then
  # Build dependencies from Debian 12 (headers only; the server itself is built here).
  deps=(build-essential pkg-config bison flex zlib1g-dev libssl-dev libicu-dev liblz4-dev libzstd-dev)
  missing=()
  for p in "${deps[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    log "apt: installing ${missing[*]}"
    # (Its output to stderr: this script's stdout is the bin directory.)
    { as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-upgrade --no-install-recommends "${missing[@]}" \
      || { as_root apt-get update -q && as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-upgrade --no-install-recommends "${missing[@]}"; }; } >&2
  fi
  apt_dir="$cache/apt"
  mkdir -p "$apt_dir/lists/partial" "$apt_dir/cache/archives/partial" "$cache/src"
  printf 'deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian %s main\n' \
    sid >"$apt_dir/sources.list"
  apt_opts=(-o "Dir::Etc::sourcelist=$apt_dir/sources.list" -o "Dir::Etc::sourceparts=-"
            -o "Dir::State::Lists=$apt_dir/lists" -o "Dir::Cache=$apt_dir/cache" -o "APT::Sandbox::User=root")
  tarball=$(ls "$cache/src/postgresql-${major}_"*.orig.tar.bz2 2>/dev/null | head -n 1 || true)
  if [ -z "$tarball" ]; then
    log "apt (private lists): the source of postgresql-$major from $suite"
    apt-get "${apt_opts[@]}" update -q >/dev/null
    ( cd "$cache/src" && apt-get "${apt_opts[@]}" source --download-only -q "postgresql-$major" >/dev/null )
    tarball=$(ls "$cache/src/postgresql-${major}_"*.orig.tar.bz2 | head -n 1)
  fi
  log "building PostgreSQL $major from $(basename "$tarball") into $prefix (once)"
  build=$(mktemp -d /tmp/mfa_auth-pgbuild.XXXXXX)
  tar -xjf "$tarball" -C "$build"
  src=$(ls -d "$build"/postgresql-*/ | head -n 1)
  # Assertions on in one version: a failed Assert in the extension's use of the server shows
  # as a TRAP in its log, which every test level reads.
  cassert=()
  [ "$major" = 18 ] && cassert=(--enable-cassert)
  ( cd "$src" && ./configure --prefix="$prefix" --without-readline --with-openssl --with-icu --with-lz4 --with-zstd \
      "${cassert[@]}" >"$build/configure.log" 2>&1 \
    && make -s -j"$(nproc)" >"$build/make.log" 2>&1 \
    && make -s -C contrib/amcheck && make -s -C contrib/pg_stat_statements \
    && make -s install >"$build/install.log" 2>&1 \
    && make -s -C contrib/amcheck install && make -s -C contrib/pg_stat_statements install ) \
    || { tail -n 30 "$build"/*.log >&2; die "building PostgreSQL $major failed"; }
  rm -rf "$build"
fi
# The cluster user must be able to run the binaries and write the extension files' directories
# as root installs them (cargo pgrx install runs as root).
chmod -R a+rX "$prefix"

pgrx_init >&2
echo "$prefix/bin"
