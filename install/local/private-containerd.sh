#!/usr/bin/env bash
# Run a private containerd whose whole world (root, state, sockets, opt, log,
# pid file) lives under one directory, so it never touches a system containerd.
#
#   private-containerd.sh start DIR   start it (idempotent), wait until it answers
#   private-containerd.sh stop DIR    stop it, its shims and containers, unmount DIR/*
#
# Used by the test environment (tests/env/up.sh) and by the scripts that start
# nodekitd for a newcomer. Needs root (containerd does), no systemd.
set -euo pipefail

readonly START_TIMEOUT_S=10
readonly STOP_TIMEOUT_S=10

die() { echo "private-containerd: $*" >&2; exit 1; }
log() { echo "private-containerd: $*" >&2; }

usage() {
	echo "usage: $0 start|stop DIR" >&2
	exit 2
}

# Paths derived from DIR. Absolute, because the shims are told the socket path.
set_paths() {
	DIR=$(realpath -m -- "$1")
	CONFIG=$DIR/config.toml
	SOCK=$DIR/containerd.sock
	PIDFILE=$DIR/containerd.pid
	LOGFILE=$DIR/containerd.log
	# sun_path is 108 bytes; containerd appends nothing to these but be explicit.
	if ((${#SOCK} + 6 > 107)); then
		die "socket path $SOCK.ttrpc is too long for a unix socket; use a shorter DIR"
	fi
}

write_config() {
	mkdir -p "$DIR/root" "$DIR/state" "$DIR/opt"
	local tmp=$CONFIG.tmp.$$
	cat >"$tmp" <<EOF
# Written by install/local/private-containerd.sh each time it starts containerd.
version = 2
root = "$DIR/root"
state = "$DIR/state"
# CRI is not used by nodekit and would want its own network/stream setup.
disabled_plugins = ["io.containerd.grpc.v1.cri"]

[grpc]
  address = "$SOCK"

[ttrpc]
  address = "$SOCK.ttrpc"

[plugins]
  [plugins."io.containerd.internal.v1.opt"]
    path = "$DIR/opt"
  # Only read if CRI is ever re-enabled: no systemd on these machines, so
  # cgroupfs (the runc default for non-CRI clients too).
  [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
    SystemdCgroup = false
EOF
	mv -f "$tmp" "$CONFIG"
}

# The PID from the pid file, if that process is alive and is *our* containerd
# (its command line names our config), guarding against PID reuse.
our_pid() {
	local pid
	[[ -s $PIDFILE ]] || return 1
	pid=$(<"$PIDFILE")
	[[ $pid =~ ^[0-9]+$ ]] || return 1
	[[ -r /proc/$pid/cmdline ]] || return 1
	tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$CONFIG" || return 1
	echo "$pid"
}

answers() {
	[[ -S $SOCK ]] || return 1
	timeout 5 ctr --address "$SOCK" version >/dev/null 2>&1
}

wait_until_answers() {
	local pid=$1 deadline=$((SECONDS + START_TIMEOUT_S))
	until answers; do
		if ! kill -0 "$pid" 2>/dev/null; then
			tail -n 20 "$LOGFILE" >&2 || true
			die "containerd (pid $pid) exited during startup; log: $LOGFILE"
		fi
		if ((SECONDS >= deadline)); then
			tail -n 20 "$LOGFILE" >&2 || true
			die "containerd (pid $pid) did not answer on $SOCK within ${START_TIMEOUT_S}s; log: $LOGFILE"
		fi
		sleep 0.05
	done
}

cmd_start() {
	local pid
	command -v containerd >/dev/null || die "containerd is not installed"
	command -v ctr >/dev/null || die "ctr is not installed"
	if pid=$(our_pid) && answers; then
		return 0 # already up
	fi
	if pid=$(our_pid); then
		# Alive but not answering: a wedged instance. Restart it cleanly.
		log "containerd pid $pid does not answer; restarting it"
		cmd_stop
	fi
	write_config
	rm -f "$PIDFILE" "$SOCK" "$SOCK.ttrpc"
	# setsid: own session, so a Ctrl-C or a closing terminal in the caller
	# does not kill it. No job control in this script, so setsid does not
	# fork and $! is containerd's own PID.
	setsid containerd --config "$CONFIG" </dev/null >>"$LOGFILE" 2>&1 &
	pid=$!
	echo "$pid" >"$PIDFILE"
	wait_until_answers "$pid"
}

# Split /proc/PID/cmdline into the array CMDLINE.
read_cmdline() {
	CMDLINE=()
	[[ -r /proc/$1/cmdline ]] || return 1
	mapfile -d '' -t CMDLINE <"/proc/$1/cmdline" 2>/dev/null || return 1
	((${#CMDLINE[@]} > 0))
}

# PIDs of containerd-shim* processes started by this containerd: their command
# line carries "-address SOCK". Shims survive containerd's death by design.
our_shims() {
	local p pid i
	for p in /proc/[0-9]*; do
		pid=${p#/proc/}
		read_cmdline "$pid" || continue
		[[ ${CMDLINE[0]##*/} == containerd-shim* ]] || continue
		for ((i = 1; i < ${#CMDLINE[@]} - 1; i++)); do
			if [[ ${CMDLINE[i]} == -address && ${CMDLINE[i + 1]} == "$SOCK" ]]; then
				echo "$pid"
				break
			fi
		done
	done
}

# "PID PPID" for every process. comm (field 2) may contain spaces and
# parentheses, so cut at the last ") ".
ppid_table() {
	local f line rest pid ppid
	for f in /proc/[0-9]*/stat; do
		{ read -r line <"$f"; } 2>/dev/null || continue
		rest=${line##*) }
		read -r _ ppid _ <<<"$rest"
		pid=${f#/proc/}
		echo "${pid%/stat} $ppid"
	done
}

# All descendants of PID, one per line.
descendants() {
	ppid_table | awk -v root="$1" '
		{ parent[$1] = $2 }
		END {
			for (p in parent) {
				q = p
				while (q in parent && q != root && q + 0 > 1) q = parent[q]
				if (q == root && p != root) print p
			}
		}'
}

# TERM, wait up to STOP_TIMEOUT_S, then KILL. Returns once PID is gone.
terminate() {
	local pid=$1 deadline=$((SECONDS + STOP_TIMEOUT_S))
	kill -TERM "$pid" 2>/dev/null || return 0
	while kill -0 "$pid" 2>/dev/null; do
		if ((SECONDS >= deadline)); then
			kill -KILL "$pid" 2>/dev/null || true
			deadline=$((SECONDS + STOP_TIMEOUT_S))
		fi
		# A zombie child of ours would stay "alive" forever; reap if ours.
		[[ $(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null) == Z ]] && break
		sleep 0.05
	done
}

# Polite path: ask containerd to kill and delete every task, so the shims exit
# on their own and clean their runc state under /run/containerd/runc.
kill_tasks_via_ctr() {
	local ns id
	answers || return 0
	for ns in $(timeout 5 ctr --address "$SOCK" namespaces ls -q 2>/dev/null); do
		for id in $(timeout 5 ctr --address "$SOCK" -n "$ns" tasks ls -q 2>/dev/null); do
			timeout 10 ctr --address "$SOCK" -n "$ns" tasks delete -f "$id" >/dev/null 2>&1 ||
				log "could not delete task $ns/$id via ctr; will kill its shim"
		done
	done
}

# Blunt path: whatever shim is left, kill its containers then itself, and drop
# the runc state it would have removed (shared /run/containerd/runc/<ns>/<id>,
# which would otherwise block reusing the container id).
kill_leftover_shims() {
	local shim ns id i kids
	for shim in $(our_shims); do
		read_cmdline "$shim" || continue
		ns='' id=''
		for ((i = 1; i < ${#CMDLINE[@]} - 1; i++)); do
			case ${CMDLINE[i]} in
			-namespace) ns=${CMDLINE[i + 1]} ;;
			-id) id=${CMDLINE[i + 1]} ;;
			esac
		done
		kids=$(descendants "$shim")
		log "killing leftover shim $shim (${ns:-?}/${id:-?}) and its processes: ${kids//$'\n'/ }"
		# shellcheck disable=SC2086 # word splitting of the PID list is intended
		[[ -z $kids ]] || kill -KILL $kids 2>/dev/null || true
		terminate "$shim"
		if [[ -n $ns && -n $id && -d /run/containerd/runc/$ns/$id ]]; then
			runc --root "/run/containerd/runc/$ns" delete -f "$id" >/dev/null 2>&1 || true
		fi
	done
}

# Mount points strictly under DIR, deepest first. /proc/self/mountinfo escapes
# space, tab, newline and backslash as \NNN octal; printf %b wants \0NNN.
mounts_under_dir() {
	local mp slashes
	awk '{print $5}' /proc/self/mountinfo | while read -r mp; do
		mp=$(printf '%b' "${mp//\\/\\0}")
		[[ $mp == "$DIR"/* ]] || continue
		slashes=${mp//[^\/]/}
		printf '%s\t%s\n' "${#slashes}" "$mp"
	done | sort -t $'\t' -k1,1nr -k2,2r | cut -f2-
}

unmount_all() {
	local mp
	while IFS= read -r mp; do
		[[ -n $mp ]] || continue
		umount "$mp" 2>/dev/null || umount -l "$mp" 2>/dev/null ||
			log "could not unmount $mp"
	done < <(mounts_under_dir)
}

cmd_stop() {
	local pid
	kill_tasks_via_ctr
	kill_leftover_shims
	if pid=$(our_pid); then
		terminate "$pid"
	fi
	# containerd may have started a shim between the two passes; sweep again.
	kill_leftover_shims
	unmount_all
	rm -f "$PIDFILE"
}

main() {
	[[ $# -eq 2 ]] || usage
	[[ $(id -u) -eq 0 ]] || die "must run as root"
	set_paths "$2"
	case $1 in
	start) cmd_start ;;
	stop) cmd_stop ;;
	*) usage ;;
	esac
}

main "$@"
