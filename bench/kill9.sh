#!/usr/bin/env bash
# kill -9 of nodekitd at random moments during concurrent builds, ITERATIONS times in a row on
# the same root (issue 18's fault list), each restart followed by the consistency check of
# tests/cache/kill_loop.rs: nothing of the killed run left in containerd (leases, containers,
# tasks, snapshots; in a namespace of the test's own) or mounted under the daemon's root, the
# next build succeeds, every cache record resolves and every cache lease is a record's.
# The normal suite runs 3 iterations; this is the long run. Not part of CI's run.
#   bash bench/kill9.sh [ITERATIONS]      (default 50)
# Brings the test environment up (tests/env/up.sh); prints one line per iteration (the kill's
# moment, how many builds had finished, records) and the time in all.
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
readonly REPO
ITERATIONS=${1:-50}
# shellcheck source=bench/lib.sh
source "$REPO/bench/lib.sh"
cd "$REPO"
bench_env
cargo build -p nodekitd >&2
log=$(mktemp /tmp/nodekit-kill9.XXXXXX)
started=$(date +%s)
status=0
NODEKIT_KILL9_ITERATIONS=$ITERATIONS cargo test -p nodekit-tests --test cache \
	kill_loop::kill_9_at_random_moments_during_concurrent_builds_leaves_nothing_behind \
	-- --exact --nocapture >"$log" 2>&1 || status=$?
grep -E '^kill9 iteration|panicked|^test result' "$log" || true
echo "kill9: $ITERATIONS iterations, $(($(date +%s) - started)) s, exit status $status (log: $log)"
exit "$status"
