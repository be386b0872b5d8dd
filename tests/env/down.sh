#!/usr/bin/env bash
# Take the nodekit test environment down: the registry (by its PID), then the
# private containerd with its shims, containers and mounts
# (install/local/private-containerd.sh stop).
#
#   down.sh [--purge]    --purge also deletes the state dir (images, registry
#                        data, containerd root), so the next up.sh starts clean.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
STATE=$(realpath -m -- "${NODEKIT_TESTENV:-/var/tmp/nodekit-testenv}")
readonly REPO STATE
readonly REG_PIDFILE=$STATE/registry.pid
readonly REG_CONFIG=$STATE/registry/config.yml

log() { echo "down: $*" >&2; }
die() { echo "down: $*" >&2; exit 1; }

# shellcheck source=tests/env/registry-pid.sh
source "$REPO/tests/env/registry-pid.sh"

# TERM, up to 5 s grace, then KILL.
stop_registry() {
	local pid n
	if pid=$(registry_pid); then
		kill -TERM "$pid" 2>/dev/null || true
		for ((n = 0; n < 100; n++)); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.05
		done
		if kill -0 "$pid" 2>/dev/null; then
			log "registry pid $pid ignored TERM; killing it"
			kill -KILL "$pid" 2>/dev/null || true
		fi
	fi
	rm -f "$REG_PIDFILE"
}

stop_containerd() {
	[[ -d $STATE/containerd ]] || return 0
	bash "$REPO/install/local/private-containerd.sh" stop "$STATE/containerd" 9>&-
}

# Refuse to rm -rf anything that does not look like our state dir.
purge() {
	[[ -d $STATE ]] || return 0
	case $STATE in
	/ | /root | /home | /var | /var/tmp | /tmp | /usr | /etc) die "refusing to purge $STATE" ;;
	esac
	if grep -qF " $STATE/" /proc/self/mountinfo; then
		die "something is still mounted under $STATE; not purging"
	fi
	rm -rf -- "$STATE"
	log "purged $STATE"
}

main() {
	local do_purge=0
	case ${1:-} in
	'') ;;
	--purge) do_purge=1 ;;
	*) die "usage: $0 [--purge]" ;;
	esac
	[[ $(id -u) -eq 0 ]] || die "must run as root"
	if [[ -d $STATE ]]; then
		exec 9>"$STATE/.lock" # serialize with up.sh
		flock 9
	fi
	stop_registry
	stop_containerd
	rm -f "$STATE/env"
	if ((do_purge)); then
		purge
		echo "nodekit testenv down (purged)"
	else
		echo "nodekit testenv down"
	fi
}

main "$@"
