#!/usr/bin/env bash
# Builds the Debian package of mfa_auth for one PostgreSQL major, as Debian names its extension
# packages: postgresql-MAJOR-mfa-auth_VERSION-1_amd64.deb, with a SHA256SUMS file beside it.
#   scripts/package.sh [--pg-config PATH] [--out-dir DIR] [--commit COMMIT]
#     --pg-config  the server to build for (default: Debian 12's PostgreSQL 15); the package
#                  installs into Debian's layout for that major (/usr/lib/postgresql/MAJOR/lib,
#                  /usr/share/postgresql/MAJOR/extension) wherever that server lives
#     --out-dir    where the .deb and SHA256SUMS go (default: target/debian)
#     --commit     build a release commit instead of the working tree (in a git worktree; the
#                  build is cached in ~/.cache/mfa_auth, as tests/upgrade/run.sh caches it)
# The package holds the library, the control file, the install script of its version and every
# upgrade script, the test-helper extension mfa_auth_test (its control file and script), the
# copyright file and the changelogs; nothing else. Its Depends come from
# dpkg-shlibdeps (the shared libraries the library links) and the server package of the major.
# A server configured with --enable-cassert gets a package that says so: version
# VERSION-1~cassert (sorts before the real one) and a description line. Every file's time is the
# commit's (SOURCE_DATE_EPOCH), so the same commit gives the same .deb.
# Prints the path of the package.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)
# shellcheck source=scripts/lib.sh
. "$here/lib.sh"
ensure_cargo_path

pg_config=$PG_CONFIG out_dir=$root/target/debian commit=
while [ $# -gt 0 ]; do
  case $1 in
    --pg-config) pg_config=$2; shift 2 ;;
    --out-dir) out_dir=$2; shift 2 ;;
    --commit) commit=$2; shift 2 ;;
    *) die "usage: scripts/package.sh [--pg-config PATH] [--out-dir DIR] [--commit COMMIT]" ;;
  esac
done
[ -x "$pg_config" ] || die "no pg_config at $pg_config"
major=$("$pg_config" --version | sed 's/^PostgreSQL \([0-9]*\).*/\1/')
mkdir -p "$out_dir"
out_dir=$(cd "$out_dir" && pwd)
work=$(mktemp -d /tmp/mfa_auth-deb.XXXXXX)
trap 'rm -rf "$work"' EXIT

# --- the build: `cargo pgrx package` of the working tree or of a release commit --------------
if [ -z "$commit" ]; then
  version=$(project_version "$root/Cargo.toml")
  export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git -C "$root" log -1 --format=%ct 2>/dev/null || date +%s)}
  staging=$work/staging
  log "cargo pgrx package --pg-config $pg_config (mfa_auth $version, PostgreSQL $major)"
  (cd "$root" && CARGO_TARGET_DIR=$(release_target_dir) cargo pgrx package --pg-config "$pg_config" --out-dir "$staging") \
    >"$work/build.log" 2>&1 \
    || { tail -n 60 "$work/build.log" >&2; die "cargo pgrx package failed"; }
  changelog_src=$root/CHANGELOG.md
else
  commit=$(git -C "$root" rev-parse --short=7 "$commit")
  git -C "$root" show "$commit:Cargo.toml" >"$work/Cargo.toml"
  version=$(project_version "$work/Cargo.toml")
  export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git -C "$root" log -1 --format=%ct "$commit")}
  staging=$(release_build "$commit" "$pg_config") || die "building $version ($commit) failed"
  # (A release before 0.3.0 had no CHANGELOG.md: the package carries this tree's, which has it.)
  changelog_src=$root/CHANGELOG.md
fi

# --- the package tree, in Debian's layout ------------------------------------------------------
name=postgresql-$major-mfa-auth
deb_version=$version-1
description_extra=
if "$pg_config" --configure | grep -q -- '--enable-cassert'; then
  deb_version=$version-1~cassert
  description_extra="
 .
 Built against a PostgreSQL $major server configured with --enable-cassert
 (assertions on): for testing. A package for production is built against
 the distribution's server."
fi
pkg=$work/pkg
libdir=$pkg/usr/lib/postgresql/$major/lib
extdir=$pkg/usr/share/postgresql/$major/extension
docdir=$pkg/usr/share/doc/$name
install -d "$libdir" "$extdir" "$docdir" "$pkg/DEBIAN"
so=$(find "$staging" -name mfa_auth.so | head -n 1)
[ -n "$so" ] || die "the build has no mfa_auth.so"
# Stripped as Debian's tools strip a shared library (dh_strip): the exported symbols stay.
strip --strip-unneeded --remove-section=.comment --remove-section=.note -o "$libdir/mfa_auth.so" "$so"
chmod 644 "$libdir/mfa_auth.so"
sqls=0
while IFS= read -r f; do
  install -m 644 "$f" "$extdir/"
  case $f in *.sql) sqls=$((sqls + 1)) ;; esac
done < <(find "$staging" -path '*/extension/*' \( -name 'mfa_auth.control' -o -name 'mfa_auth--*.sql' \) -type f)
[ -f "$extdir/mfa_auth.control" ] && [ -f "$extdir/mfa_auth--$version.sql" ] \
  || die "the build has no control file or no mfa_auth--$version.sql"
grep -qx "default_version = '$version'" "$extdir/mfa_auth.control" \
  || die "the control file's default_version is not $version"
# The test-helper extension mfa_auth_test (plain SQL, on the library's C symbol), from 0.4.0 on:
# its control file and script, from the same tree as the build.
helper=$work/helper
mkdir -p "$helper"
if [ -z "$commit" ]; then
  cp "$root"/mfa_auth_test/mfa_auth_test.control "$root"/mfa_auth_test/mfa_auth_test--*.sql "$helper/" 2>/dev/null || true
elif git -C "$root" cat-file -e "$commit:mfa_auth_test" 2>/dev/null; then
  git -C "$root" archive "$commit" mfa_auth_test | tar -x -C "$work"
fi
for f in "$helper"/mfa_auth_test.control "$helper"/mfa_auth_test--*.sql; do
  [ -f "$f" ] && install -m 644 "$f" "$extdir/"
done

# copyright (machine-readable, DEP-5) and the changelogs: Debian's (this packaging) and the project's.
cat >"$docdir/copyright" <<EOF
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: mfa_auth
Upstream-Contact: $(maintainer)

Files: *
Copyright: 2026 the mfa_auth authors
License: Apache-2.0

License: Apache-2.0
 Licensed under the Apache License, Version 2.0 (the "License"); you may not use
 this file except in compliance with the License. You may obtain a copy of the
 License at http://www.apache.org/licenses/LICENSE-2.0
 .
 Unless required by applicable law or agreed to in writing, software distributed
 under the License is distributed on an "AS IS" BASIS, WITHOUT WARRANTIES OR
 CONDITIONS OF ANY KIND, either express or implied. See the License for the
 specific language governing permissions and limitations under the License.
 .
 On Debian systems, the complete text of the Apache License, Version 2.0 can be
 found in "/usr/share/common-licenses/Apache-2.0".
EOF
{
  printf '%s (%s) unstable; urgency=medium\n\n' "$name" "$deb_version"
  printf '  * mfa_auth %s for PostgreSQL %s (the changes: changelog.gz).\n\n' "$version" "$major"
  printf ' -- %s  %s\n' "$(maintainer)" "$(date -u -R -d "@$SOURCE_DATE_EPOCH")"
} | gzip -9n >"$docdir/changelog.Debian.gz"
[ -f "$changelog_src" ] && gzip -9nc "$changelog_src" >"$docdir/changelog.gz"

# --- the control file: the server package and what dpkg-shlibdeps finds the library needs ----
install -d "$work/shlibs/debian"
printf 'Source: mfa-auth\n\nPackage: %s\nArchitecture: any\n' "$name" >"$work/shlibs/debian/control"
# (The server's own symbols the library calls resolve in the postgres binary at load time:
# dpkg-shlibdeps cannot see them, so its warnings about them are dropped.)
shlibs=$(cd "$work/shlibs" && dpkg-shlibdeps -O --warnings=0 "$libdir/mfa_auth.so" | sed -n 's/^shlibs:Depends=//p')
[ -n "$shlibs" ] || die "dpkg-shlibdeps found no shared library dependencies"
installed_size=$(du -sk --exclude=DEBIAN "$pkg" | cut -f1)
cat >"$pkg/DEBIAN/control" <<EOF
Package: $name
Source: mfa-auth
Version: $deb_version
Architecture: $(dpkg --print-architecture)
Maintainer: $(maintainer)
Installed-Size: $installed_size
Depends: postgresql-$major, $shlibs
Section: database
Priority: optional
Description: multi-factor authentication inside PostgreSQL $major
 mfa_auth is a PostgreSQL extension that enrolls second factors (TOTP,
 phone codes, WebAuthn security keys and passkeys, recovery codes), issues
 and verifies challenges and records how a session authenticated, so that
 row-level security policies can require a verified second factor
 (auth.aal(), auth.mfa_satisfied()).
 .
 This package is the extension for PostgreSQL $major: the library, its
 control file and every install and upgrade script. After installing it,
 add mfa_auth to shared_preload_libraries, give it a key file and run
 CREATE EXTENSION mfa_auth. For test databases it also holds mfa_auth_test,
 helpers for pgTAP suites of policies that need a verified second factor.$description_extra
EOF
(cd "$pkg" && find usr -type f -print0 | LC_ALL=C sort -z | xargs -0 md5sum) >"$pkg/DEBIAN/md5sums"
find "$pkg" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
deb="$out_dir/${name}_${deb_version}_$(dpkg --print-architecture).deb"
dpkg-deb --root-owner-group -Zxz --build "$pkg" "$deb" >/dev/null
(cd "$out_dir" && sha256sum -- *.deb >SHA256SUMS)
log "$(basename "$deb"): $(stat -c %s "$deb") bytes, $sqls SQL scripts, Depends: postgresql-$major, $shlibs"
echo "$deb"
