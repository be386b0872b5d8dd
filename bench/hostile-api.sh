#!/usr/bin/env bash
# Hostile LLB through the daemon, the long runs of tests/api/hostile_llb.rs (issue 18): a chain
# of 10,000 ops, each making a directory, solved until the mount of layer 501 fails naming
# overlayfs' bound (BuildKit has the same bound); a graph of 100,000 ops whose first fails; each
# followed by a small build on the same daemon. Prints the time each took and the peak resident
# memory of the test process (client and daemon in one). The suite runs the short versions (a 10,000-op chain whose first op fails;
# a step on 150 layers). Not part of CI's run.
#   bash bench/hostile-api.sh
# Brings the test environment up (tests/env/up.sh).
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
readonly REPO
# shellcheck source=bench/lib.sh
source "$REPO/bench/lib.sh"
cd "$REPO"
bench_env
cargo build -q -p nodekitd
for test in a_chain_of_10_000_ops_fails_at_the_layer_bound a_chain_of_100_000_ops; do
	/usr/bin/time -f "peak resident memory: %M KB" \
		cargo test -q -p nodekit-tests --test api "hostile_llb::$test" -- --ignored --nocapture 2>&1 |
		grep -E "chain of|test result|panicked|peak resident"
done
