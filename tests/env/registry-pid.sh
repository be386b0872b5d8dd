# shellcheck shell=bash
# Sourced by up.sh and down.sh: the PID of the test registry, if it is alive and really ours.
# Needs REG_PIDFILE and REG_CONFIG.

# PID of our registry if alive (its command line names our config).
registry_pid() {
	local pid
	[[ -s $REG_PIDFILE ]] || return 1
	pid=$(<"$REG_PIDFILE")
	[[ $pid =~ ^[0-9]+$ && -r /proc/$pid/cmdline ]] || return 1
	tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$REG_CONFIG" || return 1
	echo "$pid"
}
