#!/usr/bin/env bash
# Installs everything the project needs to build, try and test, idempotently:
# Debian packages, cargo-pgrx at the pinned version, `cargo pgrx init` against
# Debian's PostgreSQL 15, and the Python test helpers. Fast when all is present.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=scripts/lib.sh
. "$here/lib.sh"
ensure_cargo_path

# --- Debian packages -----------------------------------------------------------
apt_pkgs=("postgresql-$PG_MAJOR" "postgresql-server-dev-$PG_MAJOR" sudo pkg-config libssl-dev
          build-essential oathtool python3-venv pgbouncer chromium shellcheck lintian
          "postgresql-$PG_MAJOR-pgtap" libtap-parser-sourcehandler-pgtap-perl
          "postgresql-$PG_MAJOR-auto-failover" pg-auto-failover-cli gdb)
missing=()
for p in "${apt_pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  log "apt: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  as_root apt-get update -q
  if ! dpkg-query -W -f='${Status}' postgresql-$PG_MAJOR 2>/dev/null | grep -q 'ok installed'; then
    as_root apt-get install -y -q --no-install-recommends postgresql-$PG_MAJOR
  fi
  # Pin server-dev to the installed server's version: unpinned, apt would upgrade
  # the server, libpq5 and the client as a side effect.
  srv_ver=$(dpkg-query -W -f='${Version}' postgresql-$PG_MAJOR)
  rest=()
  for p in "${missing[@]}"; do
    case "$p" in
      "postgresql-$PG_MAJOR") ;;
      "postgresql-server-dev-$PG_MAJOR") rest+=("$p=$srv_ver") ;;
      *) rest+=("$p") ;;
    esac
  done
  [ ${#rest[@]} -gt 0 ] && as_root apt-get install -y -q --no-upgrade --no-install-recommends "${rest[@]}"
fi

# Debian's pgbouncer package may start a system-wide service: the tests run their own.
if pgrep -x pgbouncer -u postgres >/dev/null 2>&1 && [ -f /etc/init.d/pgbouncer ]; then
  as_root service pgbouncer stop >/dev/null 2>&1 || true
fi

# --- lint tools (rustup components; present in the machine image) -------------------
for comp in rustfmt clippy; do
  if ! cargo "${comp/rustfmt/fmt}" --version >/dev/null 2>&1; then
    log "rustup: adding $comp"
    rustup component add "$comp" || die "cargo ${comp/rustfmt/fmt} is missing and rustup could not add it"
  fi
done

# The unused-dependency check of the lint level.
if ! cargo machete --version >/dev/null 2>&1; then
  log "cargo: installing cargo-machete (about 2 minutes once)"
  cargo install --locked cargo-machete --version 0.9.2
fi

# --- cargo-pgrx ----------------------------------------------------------------
if ! cargo pgrx --version 2>/dev/null | grep -qx "cargo-pgrx $PGRX_VERSION"; then
  log "cargo: installing cargo-pgrx $PGRX_VERSION (takes several minutes once)"
  cargo install --locked cargo-pgrx --version "$PGRX_VERSION"
fi

# Guarded: re-running init rewrites ~/.pgrx/config.toml and forces a rebuild.
pgrx_init

# --- Python test helpers (a venv inside the checkout, ignored by git) ----------
root=$(cd "$here/.." && pwd)
venv="$root/.venv"
# Playwright drives Debian's Chromium (its own browser download is never used); webauthn is
# py_webauthn, the independent WebAuthn verifier the browser tests compare with.
if ! "$venv/bin/python" -c 'import psycopg, pyotp, pytest, playwright, webauthn' 2>/dev/null; then
  log "python: installing psycopg, pyotp, pytest, playwright and webauthn into .venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check 'psycopg[binary]>=3.1,<4' 'pyotp>=2.9,<3' 'pytest>=8,<9' \
    'playwright>=1.40,<2' 'webauthn>=2.1,<3'
fi
# ruff: the lint level's Python linter (its rules: ruff.toml).
if ! "$venv/bin/ruff" --version >/dev/null 2>&1; then
  log "python: installing ruff into .venv"
  "$venv/bin/pip" install -q --disable-pip-version-check 'ruff>=0.8,<1'
fi
