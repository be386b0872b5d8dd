#!/usr/bin/env bash
# Bring the nodekit test environment up (idempotent; a no-op in well under 2 s
# when it is already up):
#   - the packages (tests/env/install.sh, skipped with NODEKIT_SKIP_INSTALL=1)
#   - a private containerd in STATE/containerd
#   - a registry on 127.0.0.1:PORT (no auth, plain http) in STATE/registry
#   - nodekit.test/busybox:1 (2-arch) imported into containerd, namespace k8s.io,
#     and NOT in the registry
#   - 127.0.0.1:PORT/nodekit/busybox:1 (2-arch) in the registry only, NOT in
#     containerd
#   - STATE/env: `source` it to get the NODEKIT_TEST_* variables.
# STATE=${NODEKIT_TESTENV:-/var/tmp/nodekit-testenv},
# PORT=${NODEKIT_TEST_REGISTRY_PORT:-5000}. tests/env/down.sh undoes it.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
STATE=$(realpath -m -- "${NODEKIT_TESTENV:-/var/tmp/nodekit-testenv}")
PORT=${NODEKIT_TEST_REGISTRY_PORT:-5000}
readonly REPO STATE PORT
readonly NS=k8s.io
readonly CTRD_DIR=$STATE/containerd
readonly SOCK=$CTRD_DIR/containerd.sock
readonly REG_DIR=$STATE/registry
readonly REG_CONFIG=$REG_DIR/config.yml
readonly REG_PIDFILE=$STATE/registry.pid
readonly REGISTRY=127.0.0.1:$PORT
readonly LOCAL_IMAGE=nodekit.test/busybox:1
readonly REGISTRY_REPO=nodekit/busybox
readonly REGISTRY_IMAGE=$REGISTRY/$REGISTRY_REPO:1
readonly IMAGES_DIR=$STATE/images
readonly REG_START_TIMEOUT_S=10

log() { echo "up: $*" >&2; }
die() { echo "up: $*" >&2; exit 1; }

ctr_() { ctr --address "$SOCK" -n "$NS" "$@"; }

install_packages() {
	if [[ ${NODEKIT_SKIP_INSTALL:-0} == 1 ]]; then return 0; fi
	bash "$REPO/tests/env/install.sh"
}

start_containerd() {
	# 9>&-: containerd must not inherit (and so hold forever) our lock.
	bash "$REPO/install/local/private-containerd.sh" start "$CTRD_DIR" 9>&-
}

# --- registry ---------------------------------------------------------------

registry_config() {
	cat <<EOF
# Written by tests/env/up.sh. Debian's /etc/docker/registry/config.yml turns on
# htpasswd auth, hence our own.
version: 0.1
log:
  level: warn
  fields:
    service: nodekit-test-registry
storage:
  filesystem:
    rootdirectory: $REG_DIR/data
  delete:
    enabled: true
http:
  addr: $REGISTRY
EOF
}

# shellcheck source=tests/env/registry-pid.sh
source "$REPO/tests/env/registry-pid.sh"

registry_answers() { curl -sf -o /dev/null --max-time 2 "http://$REGISTRY/v2/"; }

# Anything at all listening there (any HTTP status, or even a non-HTTP reply).
port_taken() {
	local code
	code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "http://$REGISTRY/" || true)
	[[ $code != 000 ]]
}

stop_registry() {
	local pid n
	pid=$(registry_pid) || { rm -f "$REG_PIDFILE"; return 0; }
	kill -TERM "$pid" 2>/dev/null || true
	for ((n = 0; n < 100; n++)); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.05
	done
	kill -KILL "$pid" 2>/dev/null || true
	rm -f "$REG_PIDFILE"
}

start_registry() {
	local pid want deadline
	command -v docker-registry >/dev/null || die "docker-registry is not installed (run tests/env/install.sh)"
	mkdir -p "$REG_DIR/data"
	want=$(registry_config)
	if pid=$(registry_pid); then
		if [[ -f $REG_CONFIG && $(<"$REG_CONFIG") == "$want" ]] && registry_answers; then
			return 0
		fi
		log "registry pid $pid has another config or does not answer; restarting it"
		stop_registry
	fi
	if port_taken; then
		die "something else listens on $REGISTRY; stop it or set NODEKIT_TEST_REGISTRY_PORT"
	fi
	printf '%s\n' "$want" >"$REG_CONFIG"
	# setsid: survive the caller's terminal/Ctrl-C; no job control here, so $!
	# is the registry itself. 9>&-: do not inherit the up/down lock.
	setsid docker-registry serve "$REG_CONFIG" </dev/null >>"$REG_DIR/registry.log" 2>&1 9>&- &
	pid=$!
	echo "$pid" >"$REG_PIDFILE"
	deadline=$((SECONDS + REG_START_TIMEOUT_S))
	until registry_answers; do
		if ! kill -0 "$pid" 2>/dev/null || ((SECONDS >= deadline)); then
			tail -n 20 "$REG_DIR/registry.log" >&2 || true
			die "registry did not come up on $REGISTRY; log: $REG_DIR/registry.log"
		fi
		sleep 0.05
	done
}

# --- images -----------------------------------------------------------------

build_images() {
	bash "$REPO/tests/env/base-images.sh" "$IMAGES_DIR" "$LOCAL_IMAGE" "$REGISTRY_IMAGE"
}

# images.tsv column COL (2 = archive, 3 = index digest) for image NAME.
image_field() {
	awk -F'\t' -v name="$1" -v col="$2" '$1 == name { print $col; found = 1 }
		END { exit !found }' "$IMAGES_DIR/images.tsv"
}

# Digest that containerd has for NAME in $NS, empty if none.
containerd_digest() {
	ctr_ images ls 2>/dev/null | awk -v name="$1" '$1 == name { print $3 }'
}

import_local_image() {
	local want have
	want=$(image_field "$LOCAL_IMAGE" 3)
	have=$(containerd_digest "$LOCAL_IMAGE")
	if [[ $have != "$want" ]]; then
		log "importing $LOCAL_IMAGE into containerd (namespace $NS)"
		ctr_ images import --all-platforms "$(image_field "$LOCAL_IMAGE" 2)" >/dev/null
		have=$(containerd_digest "$LOCAL_IMAGE")
		[[ $have == "$want" ]] || die "$LOCAL_IMAGE has digest '$have' in containerd, expected $want"
	fi
	# The registry image must be pulled by the tests, never pre-seeded: drop it
	# if an earlier (kept) test run left it behind.
	if [[ -n $(containerd_digest "$REGISTRY_IMAGE") ]]; then
		log "removing $REGISTRY_IMAGE from containerd (it must only be in the registry)"
		ctr_ images rm --sync "$REGISTRY_IMAGE" >/dev/null
	fi
}

registry_digest() {
	curl -sfI --max-time 5 \
		-H "Accept: application/vnd.oci.image.index.v1+json" \
		-H "Accept: application/vnd.docker.distribution.manifest.list.v2+json" \
		"http://$REGISTRY/v2/$REGISTRY_REPO/manifests/1" 2>/dev/null |
		tr -d '\r' | awk -F': ' 'tolower($1) == "docker-content-digest" { print $2 }'
}

push_registry_image() {
	local want have
	want=$(image_field "$REGISTRY_IMAGE" 3)
	have=$(registry_digest || true)
	[[ $have == "$want" ]] && return 0
	log "pushing $REGISTRY_IMAGE to the registry"
	# --preserve-digests: fail rather than silently rewrite the index, so the
	# digest the tests see is the one base-images.sh computed.
	skopeo copy -q --all --preserve-digests --dest-tls-verify=false \
		"oci-archive:$(image_field "$REGISTRY_IMAGE" 2):1" "docker://$REGISTRY_IMAGE" >/dev/null
	have=$(registry_digest || true)
	[[ $have == "$want" ]] || die "$REGISTRY_IMAGE has digest '$have' in the registry, expected $want"
}

# --- leftovers ----------------------------------------------------------------

# An interrupted earlier run (Ctrl-C, a killed test binary) can leave nodekit's
# containers and leases in the private containerd; the leak tests must start
# from a clean namespace. Only objects named nodekit-* are touched.
clear_leftovers() {
	local id
	for id in $(ctr_ containers ls -q 2>/dev/null | grep '^nodekit-' || true); do
		ctr_ tasks kill -s SIGKILL "$id" >/dev/null 2>&1 || true
		ctr_ tasks rm -f "$id" >/dev/null 2>&1 || true
		ctr_ containers rm "$id" >/dev/null 2>&1 || true
	done
	for id in $(ctr_ leases ls -q 2>/dev/null | grep '^nodekit-' || true); do
		ctr_ leases rm "$id" >/dev/null 2>&1 || true
	done
}

# --- env file -----------------------------------------------------------------

write_env() {
	local tmp=$STATE/env.tmp.$$
	{
		echo "# Written by tests/env/up.sh; source it."
		printf 'export %s=%q\n' \
			NODEKIT_TESTENV "$STATE" \
			NODEKIT_TEST_CONTAINERD_SOCK "$SOCK" \
			NODEKIT_TEST_CONTAINERD_ROOT "$CTRD_DIR/root" \
			NODEKIT_TEST_NAMESPACE "$NS" \
			NODEKIT_TEST_REGISTRY "$REGISTRY" \
			NODEKIT_TEST_LOCAL_IMAGE "$LOCAL_IMAGE" \
			NODEKIT_TEST_REGISTRY_IMAGE "$REGISTRY_IMAGE"
	} >"$tmp"
	mv -f "$tmp" "$STATE/env"
}

main() {
	local t0=$EPOCHREALTIME
	[[ $(id -u) -eq 0 ]] || die "must run as root"
	[[ $PORT =~ ^[0-9]+$ ]] || die "NODEKIT_TEST_REGISTRY_PORT must be a port number"
	install_packages
	mkdir -p "$STATE"
	# Two up/down at once (parallel shells, a test run and a newcomer) would
	# race on the pid files: serialize them.
	exec 9>"$STATE/.lock"
	flock 9
	start_containerd
	clear_leftovers
	start_registry
	build_images
	import_local_image
	push_registry_image
	write_env
	local us=$((${EPOCHREALTIME//[.,]/} - ${t0//[.,]/}))
	printf 'nodekit testenv up in %d.%02ds: containerd %s (ns %s, %s), registry %s (%s); source %s\n' \
		$((us / 1000000)) $((us % 1000000 / 10000)) "$SOCK" "$NS" "$LOCAL_IMAGE" \
		"$REGISTRY" "$REGISTRY_IMAGE" "$STATE/env"
}

main "$@"
