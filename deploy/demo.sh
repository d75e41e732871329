#!/usr/bin/env bash
# Runs the demo registry: a private PostgreSQL in ./lading-data, sample parties and bills of
# lading, HTTPS on https://127.0.0.1:8443. Ctrl-C stops it; the data stays for the next run.
# Extra arguments go to `lading demo` (e.g. --bind 127.0.0.1:9443, --data-dir /tmp/lading).
set -euo pipefail
cd "$(dirname "$0")/.."
deploy/ensure-deps.sh
exec cargo run --release --locked -p lading -- demo "$@"
