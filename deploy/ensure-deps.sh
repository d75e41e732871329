#!/usr/bin/env bash
# Makes sure this machine has what Lading needs to build and run:
#   - PostgreSQL server binaries (initdb, postgres): Lading runs its own private
#     cluster from them (crate lading-pgcluster), in tests, demos and as the
#     embedded default;
#   - the `postgres` account, which the server runs as when Lading runs as root
#     (PostgreSQL refuses to run as root);
#   - libpq headers and pkg-config, to build diesel's PostgreSQL backend;
#   - with --browser: Debian's chromium and chromium-driver, for the browser tests (driven
#     over WebDriver), certutil (libnss3-tools), which makes a test's chromium trust the
#     test's consortium CA through an NSS database of its own, and a font, so pages render
#     text in screenshots;
#   - with --dev: the diesel CLI (crates.io), which the store's tests use to check
#     that src/schema.rs matches the migrations; and cargo-fuzz (crates.io) for
#     tests/fuzz-smoke.sh, which also needs rustup's nightly toolchain (checked here,
#     never installed: a missing one is an error); and a Python virtual environment with
#     the `frictionless` tool (PyPI), in which the customs export tests validate a bundle's
#     data package, and `schemathesis` (PyPI), the API fuzzer the contract tests run
#     against a live registry and node (LADING_PY_VENV, default ~/.cache/lading/venv; python3 -m venv, with
#     Debian's python3-venv when the module is missing).
#
# Idempotent and a no-op when everything is present: apt-get update and install
# run only when something is missing. Prints one line per thing checked.
# Installing needs root (Debian/Ubuntu, apt).
#
# Usage: deploy/ensure-deps.sh [--dev] [--browser] [--dry-run]
set -euo pipefail

want_browser=0
want_dev=0
dry_run=0
for arg in "$@"; do
  case "$arg" in
    --browser) want_browser=1 ;;
    --dev) want_dev=1 ;;
    --dry-run) dry_run=1 ;;
    -h | --help)
      sed -n '2,26p' "$0" | sed 's/^# \{0,1\}//'
      exit 0
      ;;
    *)
      echo "ensure-deps: unknown argument '$arg' (try --help)" >&2
      exit 2
      ;;
  esac
done

export DEBIAN_FRONTEND=noninteractive

if [[ -n "${LADING_PG_BIN:-}" && ! (-x "$LADING_PG_BIN/initdb" && -x "$LADING_PG_BIN/postgres") ]]; then
  # An explicit choice that is wrong is not fixed by installing packages.
  echo "BAD      postgresql server  LADING_PG_BIN=$LADING_PG_BIN has no initdb and postgres" >&2
  exit 1
fi

# --- checks: each prints nothing and returns 0 when the thing is present ---

pg_server_dir() {
  # Same search order as lading_pgcluster::find_bin_dir.
  local dir
  if [[ -n "${LADING_PG_BIN:-}" ]]; then
    echo "$LADING_PG_BIN"
    return 0
  fi
  if command -v pg_config > /dev/null 2>&1; then
    dir="$(pg_config --bindir 2> /dev/null || true)"
    [[ -n "$dir" && -x "$dir/initdb" && -x "$dir/postgres" ]] && echo "$dir" && return 0
  fi
  dir="$(ls -d /usr/lib/postgresql/*/bin 2> /dev/null | sort -V | while read -r d; do
    [[ -x "$d/initdb" && -x "$d/postgres" ]] && echo "$d"
  done | tail -n 1)"
  [[ -n "$dir" ]] && echo "$dir" && return 0
  return 1
}
has_pg_server() { pg_server_dir > /dev/null; }
has_postgres_user() { getent passwd postgres > /dev/null; }
has_libpq_headers() { [[ -f /usr/include/postgresql/libpq-fe.h ]]; }
has_pkg_config() { command -v pkg-config > /dev/null 2>&1; }
has_chromium() { command -v chromium > /dev/null 2>&1; }
has_chromedriver() { command -v chromedriver > /dev/null 2>&1; }
has_certutil() { command -v certutil > /dev/null 2>&1; }
has_fonts() { [[ -n "$(fc-list 2> /dev/null | head -n 1)" ]]; }

# name | check function | apt package that provides it
things=(
  "postgresql server|has_pg_server|postgresql"
  "postgres account|has_postgres_user|postgresql"
  "libpq headers|has_libpq_headers|libpq-dev"
  "pkg-config|has_pkg_config|pkg-config"
)
if [[ $want_browser -eq 1 ]]; then
  things+=(
    "chromium|has_chromium|chromium"
    "chromedriver|has_chromedriver|chromium-driver"
    "certutil|has_certutil|libnss3-tools"
    "fonts|has_fonts|fonts-liberation"
  )
fi

detail() {
  case "$1" in
    has_pg_server) pg_server_dir ;;
    has_libpq_headers) echo /usr/include/postgresql/libpq-fe.h ;;
    has_pkg_config) command -v pkg-config ;;
    has_chromium) command -v chromium ;;
    has_chromedriver) command -v chromedriver ;;
    has_certutil) command -v certutil ;;
    has_fonts) echo "$(fc-list 2> /dev/null | wc -l) fonts" ;;
    has_postgres_user) getent passwd postgres | cut -d: -f3 | sed 's/^/uid /' ;;
  esac
}

DIESEL_CLI_VERSION=2.3.14
ensure_dev_tools() {
  [[ $want_dev -eq 1 ]] || return 0
  if command -v diesel > /dev/null 2>&1 && diesel --version 2> /dev/null | grep -q "$DIESEL_CLI_VERSION"; then
    printf 'ok       %-18s %s\n' "diesel CLI" "$(command -v diesel)"
    return 0
  fi
  if [[ $dry_run -eq 1 ]]; then
    echo "dry run: would cargo install diesel_cli $DIESEL_CLI_VERSION"
    return 0
  fi
  printf 'missing  %-18s -> cargo install diesel_cli %s\n' "diesel CLI" "$DIESEL_CLI_VERSION"
  cargo install diesel_cli --version "$DIESEL_CLI_VERSION" --no-default-features --features postgres --locked --quiet
}

# Any cargo-fuzz with --fuzz-dir (0.11 on) runs backend/fuzz; this one is installed when none is.
CARGO_FUZZ_VERSION=0.13.2
ensure_fuzz_tools() {
  [[ $want_dev -eq 1 ]] || return 0
  if ! rustup toolchain list 2> /dev/null | grep -q '^nightly'; then
    printf 'MISSING  %-18s cargo-fuzz builds with it: rustup toolchain install nightly\n' "nightly toolchain" >&2
    return 1
  fi
  printf 'ok       %-18s %s\n' "nightly toolchain" "$(rustup run nightly rustc --version 2> /dev/null)"
  if cargo fuzz --version > /dev/null 2>&1; then
    printf 'ok       %-18s %s\n' "cargo-fuzz" "$(cargo fuzz --version)"
    return 0
  fi
  if [[ $dry_run -eq 1 ]]; then
    echo "dry run: would cargo install cargo-fuzz $CARGO_FUZZ_VERSION"
    return 0
  fi
  printf 'missing  %-18s -> cargo install cargo-fuzz %s\n' "cargo-fuzz" "$CARGO_FUZZ_VERSION"
  cargo install cargo-fuzz --version "$CARGO_FUZZ_VERSION" --locked --quiet
}

# The customs export tests run `frictionless validate` from this virtual environment, and the
# API contract tests run `schemathesis` (the property-based API fuzzer) from it.
FRICTIONLESS_VERSION=5.21.0
SCHEMATHESIS_VERSION=4.32.5
# The README's example client (docs/examples/forwarder_client.py), which a test runs.
EXAMPLE_PACKAGES=(requests==2.34.2 cryptography==44.0.0 standardwebhooks==1.0.0)
PY_VENV="${LADING_PY_VENV:-$HOME/.cache/lading/venv}"
ensure_py_tools() {
  [[ $want_dev -eq 1 ]] || return 0
  local version
  if [[ -x "$PY_VENV/bin/frictionless" ]] && version="$("$PY_VENV/bin/frictionless" --version 2> /dev/null)" && [[ -n "$version" ]] \
    && [[ "$("$PY_VENV/bin/schemathesis" --version 2> /dev/null)" == *"$SCHEMATHESIS_VERSION"* ]] \
    && "$PY_VENV/bin/python" -c 'import requests, cryptography, standardwebhooks' 2> /dev/null; then
    printf 'ok       %-18s %s\n' "frictionless" "$PY_VENV/bin/frictionless $version"
    printf 'ok       %-18s %s\n' "schemathesis" "$PY_VENV/bin/schemathesis $SCHEMATHESIS_VERSION"
    return 0
  fi
  if [[ $dry_run -eq 1 ]]; then
    echo "dry run: would create $PY_VENV and pip install frictionless $FRICTIONLESS_VERSION schemathesis $SCHEMATHESIS_VERSION"
    return 0
  fi
  printf 'missing  %-18s -> python3 -m venv %s; pip install frictionless %s schemathesis %s\n' "python tools" "$PY_VENV" "$FRICTIONLESS_VERSION" "$SCHEMATHESIS_VERSION"
  if ! python3 -c 'import venv, ensurepip' > /dev/null 2>&1; then
    if [[ $EUID -eq 0 ]] && command -v apt-get > /dev/null 2>&1; then
      apt-get -o DPkg::Lock::Timeout=600 update -qq
      apt-get -o DPkg::Lock::Timeout=600 install -y -qq python3-venv
    else
      echo "ensure-deps: python3 has no venv module; install python3-venv (as root)" >&2
      return 1
    fi
  fi
  rm -rf "$PY_VENV"
  mkdir -p "$(dirname "$PY_VENV")"
  python3 -m venv "$PY_VENV"
  "$PY_VENV/bin/pip" install --quiet --disable-pip-version-check \
    "frictionless==$FRICTIONLESS_VERSION" "schemathesis==$SCHEMATHESIS_VERSION" "${EXAMPLE_PACKAGES[@]}"
  printf 'ok       %-18s %s\n' "frictionless" "$PY_VENV/bin/frictionless $("$PY_VENV/bin/frictionless" --version)"
  printf 'ok       %-18s %s\n' "schemathesis" "$("$PY_VENV/bin/schemathesis" --version)"
}

missing=()
check_all() {
  # $1 = "final" after installing: a miss is then an error.
  local entry name fn pkg failed=0
  missing=()
  for entry in "${things[@]}"; do
    IFS='|' read -r name fn pkg <<< "$entry"
    if "$fn"; then
      printf 'ok       %-18s %s\n' "$name" "$(detail "$fn")"
    elif [[ "${1:-}" == final ]]; then
      printf 'MISSING  %-18s still absent after installing %s\n' "$name" "$pkg"
      failed=1
    else
      printf 'missing  %-18s -> apt package %s\n' "$name" "$pkg"
      [[ " ${missing[*]-} " == *" $pkg "* ]] || missing+=("$pkg")
    fi
  done
  return $failed
}

check_all || true
if [[ ${#missing[@]} -eq 0 ]]; then
  ensure_dev_tools
  ensure_fuzz_tools
  ensure_py_tools
  exit 0
fi

if [[ $dry_run -eq 1 ]]; then
  echo "dry run: would install ${missing[*]}"
  exit 0
fi
if [[ $EUID -ne 0 ]]; then
  echo "ensure-deps: installing ${missing[*]} needs root; rerun as root" >&2
  exit 1
fi
if ! command -v apt-get > /dev/null 2>&1; then
  echo "ensure-deps: no apt-get here; install ${missing[*]} (or equivalents) by hand" >&2
  exit 1
fi

if [[ " ${missing[*]} " == *" postgresql "* ]]; then
  # Lading runs its own clusters; Debian's default system cluster (a server on
  # port 5432) would only waste memory. Our conffile is kept (--force-confold).
  mkdir -p /etc/postgresql-common
  if [[ ! -e /etc/postgresql-common/createcluster.conf ]]; then
    echo "create_main_cluster = false" > /etc/postgresql-common/createcluster.conf
  fi
fi

echo "installing: ${missing[*]}"
apt_opts=(-o DPkg::Lock::Timeout=600 -o Dpkg::Options::=--force-confold -o Dpkg::Options::=--force-confdef)
apt-get "${apt_opts[@]}" update -qq
apt-get "${apt_opts[@]}" install -y -qq "${missing[@]}"

if ! has_postgres_user && has_pg_server; then
  # Server binaries from somewhere that did not create the account.
  useradd --system --user-group --home-dir /var/lib/postgresql --shell /bin/bash postgres
fi

check_all final
ensure_dev_tools
ensure_fuzz_tools
ensure_py_tools
