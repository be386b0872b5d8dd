#!/usr/bin/env bash
# Runs nodekit's benchmarks on the real test environment (release build), printing medians.
#   bash bench/run.sh [RUNS]
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"
bash tests/env/up.sh >&2
if [[ ${NODEKIT_KEEP_ENV:-0} != 1 ]]; then
	trap 'bash tests/env/down.sh >&2' EXIT
fi
cargo build -q --release -p nodekitd -p nodekit-bench
target/release/worker-bench "${1:-5}" target/release/nodekitd
target/release/context-bench "${1:-5}"
target/release/dockerfile-bench "${1:-5}"
