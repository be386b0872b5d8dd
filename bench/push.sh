#!/usr/bin/env bash
# Images that leave the node: a push of a 512 MiB single-layer image (every blob new to the
# repository; the layer gzip-compressed on the first push, the kept copy sent afterwards), a push
# after a one-layer change (only the new layer goes), and the same image as an OCI tarball to the
# client (throughput); against curl's upload of the same bytes to the same loopback registry.
# One release nodekitd on the test containerd, in a namespace of its own, driven by the nodekit
# CLI.
#
#   bash bench/push.sh [RUNS]
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
WORK=$(mktemp -d /var/tmp/nodekit-push-bench.XXXXXX)
SUFFIX=$$
NS=nk-push-bench-$SUFFIX
PID=
REPOS=()
cleanup() {
	nk prune --all >/dev/null 2>&1 || true
	[[ -n $PID ]] && kill "$PID" 2>/dev/null || true
	wait 2>/dev/null || true
	remove_namespace "$NS"
	remove_repositories "${REPOS[@]}"
	rm -rf "$WORK"
}
trap cleanup EXIT

nk() { "$NODEKIT" --addr "unix://$WORK/nodekitd.sock" "$@"; }
timed() {
	local start
	start=$(millis)
	"$@"
	echo $(($(millis) - start))
}

start_node() {
	mkdir -p "$WORK/root"
	"$NODEKITD" --root "$WORK/root" --addr "unix://$WORK/nodekitd.sock" \
		--containerd-worker-addr "$NODEKIT_TEST_CONTAINERD_SOCK" \
		--containerd-worker-namespace "$NS" \
		--local-mount-source-root "$WORK/root/mnt" >"$WORK/nodekitd.log" 2>&1 &
	PID=$!
	nk health --wait 30 >/dev/null
}

# One 512 MiB file of random data copied by one step; a second step that each round changes.
make_context() {
	mkdir -p "$WORK/ctx"
	head -c $((512 << 20)) /dev/urandom >"$WORK/ctx/big"
	BIG_DIGEST=sha256:$(sha256sum "$WORK/ctx/big" | cut -d' ' -f1)
	cat >"$WORK/ctx/Dockerfile" <<DOCKERFILE
FROM $NODEKIT_TEST_REGISTRY_IMAGE
COPY big /big
ARG ROUND
RUN echo \$ROUND > /round
DOCKERFILE
}

build() {
	nk build --frontend dockerfile.v0 --local "context=$WORK/ctx" --local "dockerfile=$WORK/ctx" "$@" >/dev/null 2>&1
}

# curl's monolithic upload of the same 512 MiB to the same registry: the loopback rate.
curl_upload() {
	local repo=nodekit-bench/push-curl-$SUFFIX location
	location=$(curl -sfi -X POST "http://$NODEKIT_TEST_REGISTRY/v2/$repo/blobs/uploads/" |
		awk -F': ' 'tolower($1) == "location" { print $2 }' | tr -d '\r')
	[[ $location == http* ]] || location=http://$NODEKIT_TEST_REGISTRY$location
	curl -sf -X PUT -H "Content-Type: application/octet-stream" -T "$WORK/ctx/big" \
		"$location&digest=$BIG_DIGEST" >/dev/null
}

one_round() {
	local n=$1 repo=nodekit-bench/push-$SUFFIX-$1
	REPOS+=("$repo")
	build --opt build-arg:ROUND=0
	settle
	echo "push $(timed build --opt build-arg:ROUND=0 --output "type=image,name=$NODEKIT_TEST_REGISTRY/$repo:1,push=true")"
	settle
	echo "push-one-layer-change $(timed build --opt "build-arg:ROUND=$n" --output "type=image,name=$NODEKIT_TEST_REGISTRY/$repo:1,push=true")"
	settle
	echo "oci-tarball $(timed build --opt build-arg:ROUND=0 --output "type=oci,dest=$WORK/image.tar")"
	rm -f "$WORK/image.tar"
	settle
	echo "cached-build $(timed build --opt build-arg:ROUND=0)"
	settle
	echo "curl-upload $(timed curl_upload)"
}

make_context
start_node
# The first compression of the layer, apart: later pushes send the kept copy.
build --opt build-arg:ROUND=0
settle
first=$(timed build --opt build-arg:ROUND=0 --output "type=image,name=$NODEKIT_TEST_REGISTRY/nodekit-bench/push-$SUFFIX-first:1,push=true")
REPOS+=("nodekit-bench/push-$SUFFIX-first")
for n in $(seq 1 "$RUNS"); do one_round "$n"; done >"$WORK/rounds"
of() { awk -v k="$1" '$1 == k { print $2 }' "$WORK/rounds" | median; }
rate() { awk -v ms="$1" 'BEGIN { printf "%.0f", 512 / (ms / 1000) }'; }
echo "push.first-with-compression.ms $first"
for what in push push-one-layer-change oci-tarball cached-build curl-upload; do echo "$what.ms $(of "$what")"; done
# The builds are fully cached: what they add to a cached build is the push or the tarball.
echo "push.MBps $(rate $(($(of push) - $(of cached-build))))"
echo "oci-tarball.MBps $(rate $(($(of oci-tarball) - $(of cached-build))))"
echo "curl-upload.MBps $(rate "$(of curl-upload)")"
