#!/usr/bin/env bash
# Start nodekitd on this machine, ready for buildctl (README, first command).
#
#   install/local/start.sh          install what is missing, build, start, print the address
#   install/local/start.sh stop     stop nodekitd (and the private containerd, if it started one)
#
# Uses the host containerd at /run/containerd/containerd.sock when there is one; otherwise it
# starts a private containerd under $NODEKIT_ROOT/containerd. Needs root (containerd does).
# Environment: NODEKIT_ROOT (default /var/lib/nodekit), NODEKIT_PORT (default 2375),
# NODEKIT_PROFILE (release or debug build; default release).
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
readonly REPO
ROOT=${NODEKIT_ROOT:-/var/lib/nodekit}
PORT=${NODEKIT_PORT:-2375}
PROFILE=${NODEKIT_PROFILE:-release}
HOST_CONTAINERD=/run/containerd/containerd.sock
PRIVATE_DIR=$ROOT/containerd
PIDFILE=$ROOT/nodekitd.pid
LOGFILE=$ROOT/nodekitd.log
UNIX_SOCKET=$ROOT/nodekitd.sock

die() { echo "start: $*" >&2; exit 1; }
log() { echo "start: $*" >&2; }

install_packages() {
	local missing=()
	command -v containerd >/dev/null || missing+=(containerd)
	command -v runc >/dev/null || missing+=(runc)
	command -v protoc >/dev/null || missing+=(protobuf-compiler)
	((${#missing[@]} == 0)) && return 0
	log "installing ${missing[*]}"
	apt-get update -qq
	# policy-rc.d keeps Debian's postinst from starting a system containerd we did not ask for.
	local policy=/usr/sbin/policy-rc.d created=0
	if [[ ! -e $policy ]]; then
		printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod 0755 "$policy" && created=1
	fi
	DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq \
		--no-install-recommends "${missing[@]}" >/dev/null
	((created)) && rm -f "$policy"
	return 0
}

build() {
	# shellcheck source=/dev/null # rustup's environment, if cargo is not on PATH yet
	command -v cargo >/dev/null || { [[ -f $HOME/.cargo/env ]] && source "$HOME/.cargo/env"; }
	command -v cargo >/dev/null || die "cargo not found: install the Rust toolchain first"
	local flag=()
	[[ $PROFILE == release ]] && flag=(--release)
	log "building nodekitd ($PROFILE)"
	(cd "$REPO" && cargo build -q "${flag[@]}" -p nodekitd -p nodekit)
	BIN=$REPO/target/$PROFILE
}

# Prints the containerd socket to use, starting a private containerd if the host has none.
containerd_socket() {
	if [[ -S $HOST_CONTAINERD ]]; then
		log "using the host containerd at $HOST_CONTAINERD"
		echo "$HOST_CONTAINERD"
		return
	fi
	log "no host containerd: starting a private one in $PRIVATE_DIR"
	bash "$REPO/install/local/private-containerd.sh" start "$PRIVATE_DIR" >&2
	echo "$PRIVATE_DIR/containerd.sock"
}

running() { [[ -f $PIDFILE ]] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; }

start() {
	install_packages
	build
	mkdir -p "$ROOT"
	if running; then
		log "nodekitd already running (pid $(cat "$PIDFILE"))"
	else
		local socket
		socket=$(containerd_socket)
		# setsid: nodekitd outlives this script and its terminal. `stop` means now: running
		# builds are cancelled at once (no grace) and nodekitd releases what they held within
		# the 5 s `stop` waits before it kills.
		setsid "$BIN/nodekitd" --root "$ROOT" \
			--addr "unix://$UNIX_SOCKET" --addr "tcp://0.0.0.0:$PORT" \
			--containerd-worker-addr "$socket" --shutdown-grace 0s >"$LOGFILE" 2>&1 </dev/null &
		echo $! >"$PIDFILE"
	fi
	if ! "$BIN/nodekit" --addr "tcp://127.0.0.1:$PORT" health --wait 30 >/dev/null; then
		tail -n 20 "$LOGFILE" >&2
		die "nodekitd did not become ready; log: $LOGFILE"
	fi
	cat <<EOM
nodekitd is ready (pid $(cat "$PIDFILE"), log $LOGFILE).
  buildctl --addr tcp://127.0.0.1:$PORT debug workers
  buildctl --addr unix://$UNIX_SOCKET debug workers
Stop it with: $0 stop
EOM
}

stop() {
	if running; then
		local pid
		pid=$(cat "$PIDFILE")
		kill -TERM "$pid"
		for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
		kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
		log "stopped nodekitd (pid $pid)"
	fi
	rm -f "$PIDFILE"
	if [[ -f $PRIVATE_DIR/containerd.pid ]]; then
		bash "$REPO/install/local/private-containerd.sh" stop "$PRIVATE_DIR"
	fi
}

[[ $(id -u) == 0 ]] || die "run as root (containerd needs it)"
case ${1:-start} in
start) start ;;
stop) stop ;;
*) die "usage: $0 [start|stop]" ;;
esac
