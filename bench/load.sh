#!/usr/bin/env bash
# Load on a real nodekitd (release build) over tcp: CONCURRENT builds at once from as many
# client sessions, then SEQUENTIAL builds one after the other (bench/src/load_bench.rs); prints
# its resident memory, fds, tokio tasks and mounts along the way. The suite's short version is
# tests/api/load.rs.
#   bash bench/load.sh [CONCURRENT] [SEQUENTIAL]     (default 100 1000)
# NODEKITD=path runs that binary instead of the release build.
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
readonly REPO
# shellcheck source=bench/lib.sh
source "$REPO/bench/lib.sh"
cd "$REPO"
bench_env
if [[ -z ${NODEKITD:-} ]]; then
	cargo build -q --release -p nodekitd
	NODEKITD=${CARGO_TARGET_DIR:-$REPO/target}/release/nodekitd
fi
cargo build -q --release -p nodekit-bench --bin load-bench
"${CARGO_TARGET_DIR:-$REPO/target}/release/load-bench" "${1:-100}" "${2:-1000}" "$NODEKITD"
