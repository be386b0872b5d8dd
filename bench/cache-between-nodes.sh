#!/usr/bin/env bash
# The cache between two nodes, through a bundle (`nodekit cache export | import`) and through a
# registry (`--export-cache` / `--import-cache type=registry`, the loopback test registry):
# export and import throughput of a ~1 GiB cache (against the disk's own copy rate), and node
# B's first build with the imported cache as a fraction of a cold build. Two release nodekitd on
# the test containerd, each with its own root and containerd namespace (two nodes in all but
# the machine), driven by the nodekit CLI.
#
#   bash bench/cache-between-nodes.sh [RUNS]
#
# NODEKITD=/path/to/nodekitd and NODEKIT=/path/to/nodekit measure those binaries instead of
# building the release ones. Prints medians (ms, MB/s).
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
RUNS=${1:-3}
cd "$REPO"
# shellcheck source=bench/lib.sh
source "$REPO/bench/lib.sh"
bench_env
release_binaries
WORK=$(mktemp -d /var/tmp/nodekit-bundle-bench.XXXXXX)
SUFFIX=$$
PIDS=()
cleanup() {
	local node
	for node in a b; do
		nk "$node" prune --all >/dev/null 2>&1 || true
	done
	for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
	wait 2>/dev/null || true
	for node in a b; do remove_namespace "nk-bench-$node-$SUFFIX"; done
	remove_registry_caches
	rm -rf "$WORK"
}
trap cleanup EXIT

# The rounds' caches out of the test registry.
remove_registry_caches() {
	local n repos=()
	for n in $(seq 1 "${ROUND:-0}"); do
		repos+=("nodekit-bench/cache-$SUFFIX-$n" "nodekit-bench/cache-$SUFFIX-$n-cpu")
	done
	remove_repositories "${repos[@]}"
}

nk() { local node=$1; shift; "$NODEKIT" --addr "unix://$WORK/$node.sock" "$@"; }

start_node() {
	local node=$1
	mkdir -p "$WORK/$node"
	"$NODEKITD" --root "$WORK/$node" --addr "unix://$WORK/$node.sock" \
		--containerd-worker-addr "$NODEKIT_TEST_CONTAINERD_SOCK" \
		--containerd-worker-namespace "nk-bench-$node-$SUFFIX" \
		--local-mount-source-root "$WORK/$node/mnt" >"$WORK/$node.log" 2>&1 &
	PIDS+=($!)
	nk "$node" health --wait 30 >/dev/null
}

# A 1 GiB context of incompressible data in 8 files, copied by one step and read by another.
make_context() {
	local ctx=$WORK/ctx n
	mkdir -p "$ctx/data"
	for n in 1 2 3 4 5 6 7 8; do
		head -c $((128 << 20)) /dev/urandom >"$ctx/data/part$n"
	done
	cat >"$ctx/Dockerfile" <<DOCKERFILE
FROM $NODEKIT_TEST_REGISTRY_IMAGE
COPY data /data
RUN du -s /data > /size
DOCKERFILE
}

build() { build_in "$WORK/ctx" "$@"; }

# A step that costs CPU and leaves a small layer: what an import is for (a compiler, say).
make_cpu_context() {
	mkdir -p "$WORK/cpu"
	cat >"$WORK/cpu/Dockerfile" <<DOCKERFILE
FROM $NODEKIT_TEST_REGISTRY_IMAGE
RUN i=0; while [ \$i -lt 3000000 ]; do i=\$((i + 1)); done; echo $SUFFIX \$i > /count
DOCKERFILE
}

build_in() {
	local dir=$1 node=$2
	shift 2
	nk "$node" build --frontend dockerfile.v0 --local "context=$dir" --local "dockerfile=$dir" "$@" >/dev/null 2>&1
}

timed() {
	local start
	start=$(millis)
	"$@"
	echo $(($(millis) - start))
}

# The disk's own rate: a copy of the bundle file, synced.
copy_rate_once() {
	settle
	timed sh -c "cp '$WORK/cache.bundle' '$WORK/copy' && sync"
	rm -f "$WORK/copy"
}

one_round() {
	nk b prune --all >/dev/null
	settle
	echo "cold $(timed build b)"
	nk b prune --all >/dev/null
	settle
	echo "export $(timed nk a cache export -o "$WORK/cache.bundle" 2>/dev/null)"
	settle
	echo "import $(timed nk b cache import "$WORK/cache.bundle" 2>/dev/null)"
	settle
	echo "imported-build $(timed build b)"
	echo "copy $(copy_rate_once)"
	registry_round
}

# A's (cached) build exporting its cache to a repository of its own each round (so every
# layer is uploaded; the first round compresses them too, later ones send the kept copies),
# then B's first build importing it (lazily: the layers come as the steps are reached).
ROUND=0
registry_round() {
	ROUND=$((ROUND + 1))
	local ref=$NODEKIT_TEST_REGISTRY/nodekit-bench/cache-$SUFFIX-$ROUND:1
	nk b prune --all >/dev/null
	settle
	local export
	export=$(timed build a --export-cache "type=registry,ref=$ref,mode=max")
	if ((ROUND == 1)); then echo "registry-first-export $export"; else echo "registry-export $export"; fi
	settle
	echo "registry-imported-build $(timed build b --import-cache "type=registry,ref=$ref")"
	cpu_round "$NODEKIT_TEST_REGISTRY/nodekit-bench/cache-$SUFFIX-$ROUND-cpu:1"
}

# The CPU-bound step: B's cold build against B's build importing A's cache of it.
cpu_round() {
	local ref=$1
	nk b prune --all >/dev/null
	settle
	echo "cpu-cold $(timed build_in "$WORK/cpu" b)"
	build_in "$WORK/cpu" a --export-cache "type=registry,ref=$ref,mode=max"
	nk b prune --all >/dev/null
	settle
	echo "cpu-imported-build $(timed build_in "$WORK/cpu" b --import-cache "type=registry,ref=$ref")"
}

make_context
make_cpu_context
start_node a
start_node b
build a
for _ in $(seq 1 "$RUNS"); do one_round; done >"$WORK/rounds"
bytes=$(stat -c %s "$WORK/cache.bundle")
cache_bytes=$(du -sb "$WORK/ctx/data" | cut -f1)
of() { awk -v k="$1" '$1 == k { print $2 }' "$WORK/rounds" | median; }
rate() { awk -v b="$1" -v ms="$2" 'BEGIN { printf "%.0f", b / 1048576 / (ms / 1000) }'; }
echo "bundle.bytes $bytes"
for what in cold export import imported-build copy; do echo "bundle.$what.ms $(of "$what")"; done
echo "bundle.export.MBps $(rate "$cache_bytes" "$(of export)")"
echo "bundle.import.MBps $(rate "$cache_bytes" "$(of import)")"
echo "bundle.disk-copy.MBps $(rate "$bytes" "$(of copy)")"
awk -v i="$(of imported-build)" -v c="$(of cold)" 'BEGIN { printf "bundle.imported-build.fraction-of-cold %.2f\n", i / c }'
for what in registry-first-export registry-export registry-imported-build; do echo "$what.ms $(of "$what")"; done
echo "registry.export.MBps $(rate "$cache_bytes" "$(of registry-export)")"
awk -v i="$(of registry-imported-build)" -v c="$(of cold)" 'BEGIN { printf "registry.imported-build.fraction-of-cold %.2f\n", i / c }'
for what in cpu-cold cpu-imported-build; do echo "$what.ms $(of "$what")"; done
awk -v i="$(of cpu-imported-build)" -v c="$(of cpu-cold)" 'BEGIN { printf "registry.cpu-step.imported-build.fraction-of-cold %.2f\n", i / c }'
