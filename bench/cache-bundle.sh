#!/usr/bin/env bash
# The cache between two nodes through a bundle: export and import throughput of a ~1 GiB cache
# (against the disk's own copy rate), and node B's first build with the imported cache as a
# fraction of a cold build. Two release nodekitd on the test containerd, each with its own root
# and containerd namespace (two nodes in all but the machine), driven by the nodekit CLI.
#
#   bash bench/cache-bundle.sh [RUNS]
#
# NODEKITD=/path/to/nodekitd and NODEKIT=/path/to/nodekit measure those binaries instead of
# building the release ones. Prints medians (ms, MB/s).
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
RUNS=${1:-3}
cd "$REPO"
bash tests/env/up.sh >&2
# shellcheck source=/dev/null # written by up.sh
source "${NODEKIT_TESTENV:-/var/tmp/nodekit-testenv}/env"
if [[ -z ${NODEKITD:-} || -z ${NODEKIT:-} ]]; then
	cargo build -q --release -p nodekitd -p nodekit
	NODEKITD=${CARGO_TARGET_DIR:-$REPO/target}/release/nodekitd
	NODEKIT=${CARGO_TARGET_DIR:-$REPO/target}/release/nodekit
fi
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
	local ns image
	for node in a b; do
		ns=nk-bench-$node-$SUFFIX
		# The base image each node pulled into its namespace, then the namespace itself.
		for image in $(ctr -a "$NODEKIT_TEST_CONTAINERD_SOCK" -n "$ns" images ls -q 2>/dev/null); do
			ctr -a "$NODEKIT_TEST_CONTAINERD_SOCK" -n "$ns" images rm --sync "$image" >/dev/null 2>&1 || true
		done
		ctr -a "$NODEKIT_TEST_CONTAINERD_SOCK" namespaces rm "$ns" >/dev/null 2>&1 ||
			echo "cache-bundle: namespace $ns is left with something" >&2
	done
	rm -rf "$WORK"
}
trap cleanup EXIT

millis() { date +%s%3N; }
median() { sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
settle() { sync; echo 3 >/proc/sys/vm/drop_caches; }
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

build() {
	nk "$1" build --frontend dockerfile.v0 --local "context=$WORK/ctx" --local "dockerfile=$WORK/ctx" >/dev/null 2>&1
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
}

make_context
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
