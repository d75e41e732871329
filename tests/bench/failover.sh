#!/usr/bin/env bash
# Failover times (issue 14), measured by the failover tests against the release registry:
#   takeover — kill -9 of the registry process that sequences, to the first acknowledgement by
#              the one standing by (tests/tests/takeover.rs);
#   database — kill -9 of the PostgreSQL primary's postmaster, promotion of the synchronous
#              standby by the test (as soon as it has seen the registry refuse, plus 0.5 s),
#              to the first acknowledgement after it (tests/tests/failover.rs).
# Each under load of 8 submitters that retry. Usage: tests/bench/failover.sh [RUNS] (default 5).
# Prints each run's times and their medians. Timings live here, not in the tests' assertions.
set -euo pipefail
cd "$(dirname "$0")/../.."
runs="${1:-5}"
cargo build --release -p lading --bin lading >&2
export LADING_BIN="$PWD/target/release/lading" LADING_TEST_LOG=error LADING_CONTRACT_CHECK=0
cargo test -p lading-e2e --test takeover --test failover --no-run >&2
takeover=() promoted=() after=() total=()
for i in $(seq "$runs"); do
  out=$(cargo test -q -p lading-e2e --test takeover --test failover -- --nocapture \
    --test-threads 1 2>&1)
  t=$(sed -n 's/.*first acknowledgement by the standby \([0-9]*\) ms after the kill.*/\1/p' <<<"$out")
  p=$(sed -n 's/.*promoted \([0-9]*\) ms after the kill.*/\1/p' <<<"$out")
  a=$(sed -n 's/.*first acknowledgement \([0-9]*\) ms after the promotion.*/\1/p' <<<"$out")
  if [[ -z "$t" || -z "$p" || -z "$a" ]]; then
    echo "run $i: a test failed or printed no timing:" >&2
    echo "$out" >&2
    exit 1
  fi
  takeover+=("$t") promoted+=("$p") after+=("$a") total+=("$((p + a))")
  echo "run $i: takeover ${t} ms; database: promoted ${p} ms after the kill, first acknowledgement ${a} ms after the promotion (${total[-1]} ms after the kill)"
done
median() { printf '%s\n' "$@" | sort -n | awk '{v[NR]=$1} END {print (NR%2) ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2}'; }
echo "median of $runs: takeover $(median "${takeover[@]}") ms; database promotion to first acknowledgement $(median "${after[@]}") ms, kill to first acknowledgement $(median "${total[@]}") ms"
