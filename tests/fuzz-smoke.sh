#!/usr/bin/env bash
# A short run of every fuzz target (backend/fuzz, cargo-fuzz on the nightly toolchain): each
# replays its committed corpus, then mutates it for LADING_FUZZ_SECONDS (default 10) seconds.
# Any crash, failed invariant or timeout fails the script; the input that did it is left in
# backend/fuzz/artifacts/<target>/. New inputs go to a temporary folder, so the committed corpus
# is never changed by this script. deploy/ensure-deps.sh --dev installs cargo-fuzz.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${LADING_FUZZ_SECONDS:-10}"
fuzz_dir=backend/fuzz
# Same flags as the long runs (BENCHMARKS.md, "Fuzzing"): no sanitizer (the domain has no
# unsafe code), debug assertions and overflow checks on.
flags=(--fuzz-dir "$fuzz_dir" -s none -a)

if ! cargo +nightly fuzz --version > /dev/null 2>&1; then
  echo "fuzz-smoke: needs cargo-fuzz and the nightly toolchain (deploy/ensure-deps.sh --dev)" >&2
  exit 1
fi

echo "== cargo fuzz build"
cargo +nightly fuzz build "${flags[@]}"

scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
mapfile -t targets < <(cargo +nightly fuzz list --fuzz-dir "$fuzz_dir")
for target in "${targets[@]}"; do
  echo "== fuzz $target (${seconds} s)"
  mkdir -p "$scratch/$target" "$fuzz_dir/corpus/$target"
  log="$scratch/$target.log"
  status=0
  cargo +nightly fuzz run "${flags[@]}" "$target" "$scratch/$target" "$fuzz_dir/corpus/$target" -- \
    -max_total_time="$seconds" -timeout=10 -print_final_stats=1 > "$log" 2>&1 || status=$?
  grep -E '^stat::(number_of_executed_units|average_exec_per_sec)' "$log" || true
  if [[ "$status" -ne 0 ]]; then
    tail -n 40 "$log" >&2
    echo "fuzz-smoke: $target failed (exit $status); the input is in $fuzz_dir/artifacts/$target/" >&2
    exit 1
  fi
done
echo "fuzz-smoke: ${#targets[@]} passed, 0 failed"
