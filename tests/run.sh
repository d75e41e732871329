#!/usr/bin/env bash
# The whole test suite, as CI runs it: installs what the machine lacks, then formatting,
# lints, and every test — unit, property, store, HTTP over TLS, end-to-end with real
# `lading` processes — against real PostgreSQL clusters the tests start themselves — and a
# short run of every fuzz target (tests/fuzz-smoke.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

deploy/ensure-deps.sh --dev --browser

echo "== cargo fmt --check"
cargo fmt --all -- --check

echo "== cargo clippy (all targets, warnings are errors)"
cargo clippy --workspace --all-targets --locked -- -D warnings

echo "== cargo test"
# Build first: `target/<profile>/lading` comes out of this build (backend/lading's own tests
# need it) with the workspace's features, and the end-to-end tests run that very binary
# instead of building it again with the features of `lading` alone.
cargo test --workspace --locked --no-run
export LADING_BIN="${CARGO_TARGET_DIR:-$PWD/target}/debug/lading"
# Every answer of every test is checked against the published OpenAPI documents: one that
# contradicts them becomes `500 contract_violation` (backend/api/src/contract/check.rs).
export LADING_CONTRACT_CHECK=1
cargo test --workspace --locked --no-fail-fast "$@"

echo "== fuzz smoke (each target over its corpus, then ${LADING_FUZZ_SECONDS:-10} s)"
tests/fuzz-smoke.sh
