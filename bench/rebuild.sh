#!/usr/bin/env bash
# Rebuild times of one Dockerfile through the stock buildctl: a cold build, a fully cached
# rebuild, and a rebuild after one context file changed (only the step reading it re-runs).
# Against nodekitd (release) and, when BUILDKITD names an upstream buildkitd binary, against
# that daemon on the same containerd, so the two are measured in one run. Prints medians (ms).
#
#   BUILDCTL=/path/to/buildctl [BUILDKITD=/path/to/buildkitd] bash bench/rebuild.sh [RUNS]
#
# Neither upstream binary is part of this repository; build them yourself from moby/buildkit.
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
RUNS=${1:-5}
: "${BUILDCTL:?set BUILDCTL to a buildctl binary}"
cd "$REPO"
bash tests/env/up.sh >&2
# shellcheck source=/dev/null # written by up.sh
source "${NODEKIT_TESTENV:-/var/tmp/nodekit-testenv}/env"
cargo build -q --release -p nodekitd
WORK=$(mktemp -d /var/tmp/nodekit-rebuild.XXXXXX)
PIDS=()
cleanup() {
	for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$WORK"
}
trap cleanup EXIT

# A context of 2,000 small files in 20 directories, and a Dockerfile whose steps read parts.
make_context() {
	local ctx=$1 d f
	mkdir -p "$ctx"
	for d in $(seq 1 20); do
		mkdir -p "$ctx/src/d$d"
		for f in $(seq 1 100); do echo "file $d/$f" >"$ctx/src/d$d/f$f.txt"; done
	done
	echo "v0" >"$ctx/app.conf"
	cat >"$ctx/Dockerfile" <<DOCKERFILE
FROM $NODEKIT_TEST_LOCAL_IMAGE
RUN mkdir -p /work && echo base > /work/base
COPY src /work/src
RUN find /work/src -type f | wc -l > /work/count
RUN sleep 0.2 && cat /work/count > /work/checked
COPY app.conf /work/app.conf
RUN cat /work/app.conf > /work/final
DOCKERFILE
}

millis() { date +%s%3N; }

# build ADDR NAME: one build of the context, exported into the image store.
build() {
	"$BUILDCTL" --addr "$1" build --frontend dockerfile.v0 --local context="$WORK/ctx" \
		--local dockerfile="$WORK/ctx" --output "type=image,name=nodekit.test/rebuild-$2:1" \
		>"$WORK/$2.out" 2>&1 || { cat "$WORK/$2.out" >&2; return 1; }
}

median() { sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }

# measure ADDR NAME: cold, then RUNS cached rebuilds, then RUNS one-file-change rebuilds.
measure() {
	local addr=$1 name=$2 start i cached=() changed=()
	start=$(millis); build "$addr" "$name"; local cold=$(($(millis) - start))
	for ((i = 0; i < RUNS; i++)); do
		start=$(millis); build "$addr" "$name"; cached+=($(($(millis) - start)))
	done
	for ((i = 0; i < RUNS; i++)); do
		echo "v$RANDOM$i" >"$WORK/ctx/app.conf"
		start=$(millis); build "$addr" "$name"; changed+=($(($(millis) - start)))
	done
	printf '%-10s cold %6d ms   fully cached %6d ms   one file changed %6d ms\n' "$name" "$cold" \
		"$(printf '%s\n' "${cached[@]}" | median)" "$(printf '%s\n' "${changed[@]}" | median)"
}

make_context "$WORK/ctx"
mkdir -p "$WORK/nodekitd"
target/release/nodekitd --root "$WORK/nodekitd" --addr "unix://$WORK/nodekitd.sock" \
	--containerd-worker-addr "$NODEKIT_TEST_CONTAINERD_SOCK" >"$WORK/nodekitd.log" 2>&1 &
PIDS+=($!)
if [[ -n ${BUILDKITD:-} ]]; then
	"$BUILDKITD" --oci-worker=false --containerd-worker=true \
		--containerd-worker-addr="$NODEKIT_TEST_CONTAINERD_SOCK" --containerd-worker-namespace k8s.io \
		--root "$WORK/buildkitd" --addr "unix://$WORK/buildkitd.sock" >"$WORK/buildkitd.log" 2>&1 &
	PIDS+=($!)
fi
sleep 3
measure "unix://$WORK/nodekitd.sock" nodekitd
echo "v0" >"$WORK/ctx/app.conf"
if [[ -n ${BUILDKITD:-} ]]; then
	measure "unix://$WORK/buildkitd.sock" buildkitd
	"$BUILDCTL" --addr "unix://$WORK/buildkitd.sock" prune --all >/dev/null
fi
"$BUILDCTL" --addr "unix://$WORK/nodekitd.sock" prune --all >/dev/null
