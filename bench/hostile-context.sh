#!/usr/bin/env bash
# Hostile build contexts, the long run of tests/api/hostile_context.rs (issue 18): a context of
# ENTRIES files (a million by default) in directories of a thousand, sent by the nodekit client
# through the session and counted by a step that mounts it. Prints the time the build took and
# the peak resident memory of the test process (client and daemon in one). The suite runs it
# with 20,000. Not part of CI's run.
#   bash bench/hostile-context.sh [ENTRIES]
# Brings the test environment up (tests/env/up.sh); needs some 4 GB free under TMPDIR.
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
readonly REPO
ENTRIES=${1:-1000000}
# shellcheck source=bench/lib.sh
source "$REPO/bench/lib.sh"
cd "$REPO"
bench_env
cargo build -q -p nodekitd
NODEKIT_CONTEXT_ENTRIES=$ENTRIES /usr/bin/time -f "peak resident memory: %M KB" \
	cargo test -q -p nodekit-tests --test api hostile_context::many_entries_arrive -- --nocapture 2>&1 |
	grep -E "context of|test result|panicked|peak resident"
