#!/usr/bin/env bash
# nodekitd against an upstream buildkitd where users reach them: the stock buildctl over tcp and
# over the unix socket, both daemons on the same containerd, in one run. Prints medians (ms).
#
#   BUILDCTL=/path/to/buildctl [BUILDKITD=/path/to/buildkitd] bash bench/compare.sh [RUNS] [WORKLOADS]
#
# NODEKITD=/path/to/nodekitd measures that binary instead of building the release one.
# WORKLOADS (default: all): a space-separated choice of
#   small   a 6-step Dockerfile over 20 small files: cold, fully cached, one file changed
#   medium  the same Dockerfile over 2,000 small files (the client's walk of them shows)
#   big     a 512 MiB single-file context and `COPY big /big`: cold (context transfer, COPY step,
#           export), fully cached
#   many    20,000 small files and `COPY . /ctx` plus a RUN: cold (context transfer), fully
#           cached, one file changed
#   burst   8 fully cached builds of the small workload at once (wall time of all 8)
#   workers `buildctl debug workers` round trip
#   longenv one stage of N `ENV` lines on the base image, N in LONG_ENV_LINES (default
#           "1000 3000 6000"; issue 18's shape: its cost must grow about linearly with N)
#   push    the medium workload's image also pushed (gzip layers) to a new repository of the
#           loopback registry, then again after a one-file change (whole builds, cached steps)
#   cache   the medium workload with its registry cache exported (mode=max) after a cold build,
#           then, with the image and the local cache pruned, built again importing that cache
#           (also with unpack=true: buildkitd's images are otherwise left as blobs)
# and, always, each daemon's resident memory once it has been idle for a while afterwards. Every
# cached series also reports buildctl's own CPU time per build (NAME.cached.client-cpu).
# Every image is exported with uncompressed layers on both daemons (layers that stay on the node).
# A cold build follows `buildctl prune --all` and a drop of the page cache.
#
# Neither upstream binary is part of this repository; build them yourself from moby/buildkit.
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
RUNS=${1:-5}
WORKLOADS=${2:-small medium big many burst workers push cache}
: "${BUILDCTL:?set BUILDCTL to a buildctl binary}"
cd "$REPO"
# shellcheck source=bench/lib.sh
source "$REPO/bench/lib.sh"
bench_env
if [[ -z ${NODEKITD:-} ]]; then
	cargo build -q --release -p nodekitd
	NODEKITD=$REPO/target/release/nodekitd
fi
WORK=$(mktemp -d /var/tmp/nodekit-compare.XXXXXX)
PIDS=()
cleanup() {
	for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
	wait 2>/dev/null || true
	if [[ -s $WORK/repositories ]]; then
		# shellcheck disable=SC2046 # one repository per line, no spaces
		remove_repositories $(cat "$WORK/repositories")
	fi
	rm -rf "$WORK"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# ---- contexts ----------------------------------------------------------------------------------

# make_six_steps NAME DIRS FILES: a 6-step Dockerfile over DIRS directories of FILES files.
make_six_steps() {
	local ctx=$WORK/$1 d f
	for d in $(seq 1 "$2"); do
		mkdir -p "$ctx/src/d$d"
		for f in $(seq 1 "$3"); do echo "file $d/$f" >"$ctx/src/d$d/f$f.txt"; done
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

make_big() {
	local ctx=$WORK/big
	mkdir -p "$ctx"
	head -c $((512 << 20)) /dev/urandom >"$ctx/big"
	printf 'FROM %s\nCOPY big /big\n' "$NODEKIT_TEST_LOCAL_IMAGE" >"$ctx/Dockerfile"
}

make_many() {
	local ctx=$WORK/many
	mkdir -p "$ctx"
	python3 - "$ctx" <<'PY'
import os, sys
root = sys.argv[1]
for d in range(200):
    os.makedirs(f"{root}/src/d{d}", exist_ok=True)
    for f in range(100):
        with open(f"{root}/src/d{d}/f{f}.txt", "w") as out:
            out.write(f"file {d}/{f}\n" * (1 + f % 7))
PY
	printf 'FROM %s\nCOPY src /ctx\nRUN find /ctx -type f | wc -l > /count\n' \
		"$NODEKIT_TEST_LOCAL_IMAGE" >"$ctx/Dockerfile"
}

# make_long_env N: a Dockerfile of one stage of N `ENV` lines, in context longenvN.
make_long_env() {
	local ctx=$WORK/longenv$1
	mkdir -p "$ctx"
	{
		echo "FROM $NODEKIT_TEST_LOCAL_IMAGE"
		seq 0 $(($1 - 1)) | sed 's/.*/ENV V&=value-&/'
	} >"$ctx/Dockerfile"
}

# ---- one build ---------------------------------------------------------------------------------

# build ADDR CONTEXT IMAGE [BUILDCTL-ARGS...]: one build, its raw progress kept in
# $WORK/last.json and buildctl's own CPU time (user and system, as `times` prints them for a
# subshell's children) in $WORK/last.times.
build() {
	local addr=$1 ctx=$2 image=$3
	shift 3
	(
		"$BUILDCTL" --addr "$addr" build --frontend dockerfile.v0 --local context="$WORK/$ctx" \
			--local dockerfile="$WORK/$ctx" --progress rawjson \
			--output "type=image,name=nodekit.bench/$image:1,compression=uncompressed${UNPACK:-}" "$@" \
			>"$WORK/last.out" 2>"$WORK/last.json"
		status=$?
		times >"$WORK/last.times"
		exit $status
	) || {
		tail -20 "$WORK/last.json" >&2
		return 1
	}
}

# client_cpu: ms of CPU the last build's buildctl used.
client_cpu() {
	tail -1 "$WORK/last.times" | awk '{
		total = 0
		for (i = 1; i <= 2; i++) { split($i, t, /[ms]/); total += t[1] * 60 + t[2] }
		printf "%d\n", total * 1000
	}'
}

# cached NAME ADDR CONTEXT IMAGE: RUNS fully cached rebuilds; the median wall time, and the
# median CPU time of buildctl itself (what the client spends, whichever daemon answers).
cached() {
	local name=$1 i walls=() cpus=()
	shift
	for ((i = 0; i < RUNS; i++)); do
		walls+=("$(timed "$@")")
		cpus+=("$(client_cpu)")
	done
	echo "$name.cached $(printf '%s\n' "${walls[@]}" | median)"
	echo "$name.cached.client-cpu $(printf '%s\n' "${cpus[@]}" | median)"
}

# timed ADDR CONTEXT IMAGE [BUILDCTL-ARGS...]: prints the wall time of one build in ms.
timed() {
	local start
	start=$(millis)
	build "$@"
	echo $(($(millis) - start))
}

# vertex PATTERN: ms the last build spent in the vertex whose name matches PATTERN (a regex).
vertex() { python3 "$REPO/bench/vertex_ms.py" "$1" <"$WORK/last.json"; }

# ---- workloads: each prints "name value" lines --------------------------------------------------

# cold ADDR CONTEXT IMAGE: a build with nothing of it left: no image, no cache, no page cache.
cold() {
	local addr=$1 ctx=$2 image=$3
	ctr -a "$NODEKIT_TEST_CONTAINERD_SOCK" -n k8s.io images rm --sync "nodekit.bench/$image:1" >/dev/null 2>&1 || true
	"$BUILDCTL" --addr "$addr" prune --all >/dev/null
	settle
	timed "$addr" "$ctx" "$image"
}

# repeat N CMD...: CMD's output (one number) N times, then the median.
repeat() {
	local n=$1 i
	shift
	for ((i = 0; i < n; i++)); do "$@"; done | median
}

# six_steps NAME ADDR IMAGE: the 6-step workload NAME.
six_steps() {
	local name=$1 addr=$2 image=$3
	echo "$name.cold $(repeat 1 cold "$addr" "$name" "$image")"
	build "$addr" "$name" "$image" # warm-up: the first rebuild after a cold one reads from disk
	cached "$name" "$addr" "$name" "$image"
	echo "$name.one-file-changed $(repeat "$RUNS" change_and_build "$addr" "$name/app.conf" "$name" "$image")"
	echo "v0" >"$WORK/$name/app.conf"
}

small() { six_steps small "$@"; }
medium() { six_steps medium "$@"; }

change_and_build() {
	echo "v$RANDOM$RANDOM" >>"$WORK/$2"
	timed "$1" "$3" "$4"
}

big() {
	local addr=$1 image=$2 i total=() sync=() copy=() export=()
	for ((i = 0; i < (RUNS + 1) / 2; i++)); do
		# New content each time: a layer blob some other image still holds would not be written.
		dd if=/dev/urandom of="$WORK/big/big" bs=4096 count=1 conv=notrunc status=none
		total+=("$(cold "$addr" big "$image")")
		sync+=("$(vertex '^\[internal\] load build context$|^local://context$')")
		copy+=("$(vertex 'COPY big /big')")
		export+=("$(vertex '^exporting to image')")
	done
	echo "big.cold $(printf '%s\n' "${total[@]}" | median)"
	echo "big.cold.context-transfer $(printf '%s\n' "${sync[@]}" | median)"
	echo "big.cold.copy-step $(printf '%s\n' "${copy[@]}" | median)"
	echo "big.cold.export $(printf '%s\n' "${export[@]}" | median)"
	echo "big.cold.copy+export $(paste -d+ <(printf '%s\n' "${copy[@]}") <(printf '%s\n' "${export[@]}") | awk -F+ '{ print $1 + $2 }' | median)"
	build "$addr" big "$image" # warm-up: the first rebuild after a cold one reads from disk
	cached big "$addr" big "$image"
}

many() {
	local addr=$1 image=$2 i total=() sync=()
	for ((i = 0; i < (RUNS + 1) / 2; i++)); do
		total+=("$(cold "$addr" many "$image")")
		sync+=("$(vertex '^\[internal\] load build context$|^local://context$')")
	done
	echo "many.cold $(printf '%s\n' "${total[@]}" | median)"
	echo "many.cold.context-transfer $(printf '%s\n' "${sync[@]}" | median)"
	build "$addr" many "$image" # warm-up: the first rebuild after a cold one reads from disk
	cached many "$addr" many "$image"
	echo "many.one-file-changed $(repeat "$RUNS" change_and_build "$addr" many/src/d7/f7.txt many "$image")"
}

burst_once() {
	local addr=$1 image=$2 start i pids=()
	start=$(millis)
	for i in $(seq 1 8); do
		"$BUILDCTL" --addr "$addr" build --frontend dockerfile.v0 --local context="$WORK/small" \
			--local dockerfile="$WORK/small" --progress plain \
			--output "type=image,name=nodekit.bench/$image-burst$i:1,compression=uncompressed" \
			>/dev/null 2>"$WORK/burst$i.log" &
		pids+=($!)
	done
	for i in "${pids[@]}"; do wait "$i"; done
	echo $(($(millis) - start))
}

burst() {
	local addr=$1 image=$2
	build "$addr" small "$image"
	burst_once "$addr" "$image" >/dev/null
	echo "burst.8-cached $(repeat "$RUNS" burst_once "$addr" "$image")"
}

workers_once() {
	local start
	start=$(millis)
	"$BUILDCTL" --addr "$1" debug workers >/dev/null
	echo $(($(millis) - start))
}

workers() { echo "workers.round-trip $(repeat "$RUNS" workers_once "$1")"; }

# A repository of the loopback registry no round used before (removed when the run ends).
new_repository() {
	local repo
	repo=bench/$1-$(date +%s%N)
	echo "$repo" >>"$WORK/repositories"
	echo "$NODEKIT_TEST_REGISTRY/$repo"
}

push() {
	local addr=$1 image=$2 i repo first=() changed=()
	build "$addr" medium "$image" # the steps cached: what is measured is the push
	for ((i = 0; i < (RUNS + 1) / 2; i++)); do
		repo=$(new_repository "$image")
		first+=("$(timed "$addr" medium "$image" --output "type=image,name=$repo:1,push=true")")
		echo "v$RANDOM$RANDOM" >>"$WORK/medium/app.conf"
		changed+=("$(timed "$addr" medium "$image" --output "type=image,name=$repo:1,push=true")")
	done
	echo "v0" >"$WORK/medium/app.conf"
	echo "push.new-repository $(printf '%s\n' "${first[@]}" | median)"
	echo "push.one-file-changed $(printf '%s\n' "${changed[@]}" | median)"
}

# imported ADDR IMAGE REF: a build importing REF with nothing of it on the node.
imported() {
	ctr -a "$NODEKIT_TEST_CONTAINERD_SOCK" -n k8s.io images rm --sync "nodekit.bench/$2:1" >/dev/null
	"$BUILDCTL" --addr "$1" prune --all >/dev/null
	settle
	timed "$1" medium "$2" --import-cache "type=registry,ref=$3"
}

# nodekitd's images are always unpacked, ready for a pod; buildkitd's image exporter leaves an
# imported image as blobs unless asked (`unpack=true`), so the imported build is measured both
# ways.
cache() {
	local addr=$1 image=$2 i ref colds=() exports=() lazy=() unpacked=()
	for ((i = 0; i < (RUNS + 1) / 2; i++)); do
		ref=$(new_repository "cache-$image"):1
		colds+=("$(cold "$addr" medium "$image")")
		build "$addr" medium "$image" --export-cache "type=registry,ref=$ref,mode=max"
		exports+=("$(vertex '^exporting cache to registry')")
		lazy+=("$(imported "$addr" "$image" "$ref")")
		unpacked+=("$(UNPACK=,unpack=true imported "$addr" "$image" "$ref")")
	done
	echo "cache.cold $(printf '%s\n' "${colds[@]}" | median)"
	echo "cache.export-to-registry $(printf '%s\n' "${exports[@]}" | median)"
	echo "cache.imported-build $(printf '%s\n' "${lazy[@]}" | median)"
	echo "cache.imported-build.unpack=true $(printf '%s\n' "${unpacked[@]}" | median)"
}

# longenv ADDR IMAGE: RUNS builds of each long-ENV Dockerfile (the export differs from the last
# build's only in the image's name).
longenv() {
	local n
	for n in $LONG_ENV_LINES; do
		echo "longenv.$n $(repeat "$RUNS" timed "$1" "longenv$n" "$2-$n")"
	done
}

# ---- daemons -----------------------------------------------------------------------------------

# Both daemons listen on a unix socket and on loopback tcp; ADDRS[name.transport] is the address.
declare -A ADDRS PID_OF
start_daemons() {
	local port
	port=$(free_port)
	mkdir -p "$WORK/nodekitd"
	"$NODEKITD" --root "$WORK/nodekitd" --addr "unix://$WORK/nodekitd.sock" \
		--addr "tcp://127.0.0.1:$port" --containerd-worker-addr "$NODEKIT_TEST_CONTAINERD_SOCK" \
		>"$WORK/nodekitd.log" 2>&1 &
	PIDS+=($!)
	PID_OF[nodekitd]=$!
	ADDRS[nodekitd.tcp]=tcp://127.0.0.1:$port
	ADDRS[nodekitd.unix]=unix://$WORK/nodekitd.sock
	[[ -n ${BUILDKITD:-} ]] || return 0
	port=$(free_port)
	"$BUILDKITD" --oci-worker=false --containerd-worker=true \
		--containerd-worker-addr="$NODEKIT_TEST_CONTAINERD_SOCK" --containerd-worker-namespace k8s.io \
		--root "$WORK/buildkitd" --addr "unix://$WORK/buildkitd.sock" --addr "tcp://127.0.0.1:$port" \
		>"$WORK/buildkitd.log" 2>&1 &
	PIDS+=($!)
	PID_OF[buildkitd]=$!
	ADDRS[buildkitd.tcp]=tcp://127.0.0.1:$port
	ADDRS[buildkitd.unix]=unix://$WORK/buildkitd.sock
}

wait_ready() {
	local addr
	for addr in "${ADDRS[@]}"; do
		for _ in $(seq 1 100); do
			"$BUILDCTL" --addr "$addr" debug workers >/dev/null 2>&1 && continue 2
			sleep 0.1
		done
		echo "compare: $addr does not answer" >&2
		exit 1
	done
}

rss_mb() { awk '/^VmRSS/ { printf "%.1f\n", $2 / 1024 }' "/proc/$1/status"; }

# ---- run ---------------------------------------------------------------------------------------

echo "compare: making contexts" >&2
make_six_steps small 2 10
[[ $WORKLOADS =~ medium|push|cache ]] && make_six_steps medium 20 100
[[ $WORKLOADS == *big* ]] && make_big
[[ $WORKLOADS == *many* ]] && make_many
LONG_ENV_LINES=${LONG_ENV_LINES:-1000 3000 6000}
if [[ $WORKLOADS == *longenv* ]]; then
	for n in $LONG_ENV_LINES; do make_long_env "$n"; done
fi
start_daemons
wait_ready
DAEMONS=(nodekitd)
[[ -n ${BUILDKITD:-} ]] && DAEMONS+=(buildkitd)
for workload in $WORKLOADS; do
	for transport in tcp unix; do
		for daemon in "${DAEMONS[@]}"; do
			echo "compare: $workload on $daemon over $transport" >&2
			"$workload" "${ADDRS[$daemon.$transport]}" "$daemon-$workload" |
				sed "s/^/$daemon $transport /" | tee -a "$WORK/results"
		done
	done
done
sleep 10
for daemon in "${DAEMONS[@]}"; do
	echo "$daemon - idle-rss-MB $(rss_mb "${PID_OF[$daemon]}")" | tee -a "$WORK/results"
done
for daemon in "${DAEMONS[@]}"; do
	"$BUILDCTL" --addr "${ADDRS[$daemon.unix]}" prune --all >/dev/null
done

# A table: one row a measurement, one column a daemon and transport.
python3 "$REPO/bench/table.py" <"$WORK/results"
