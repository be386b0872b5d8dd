#!/usr/bin/env bash
# Smoke test of the README's first command: install/local/start.sh brings nodekitd up (with a
# private containerd, as on a machine without one), it answers on tcp and unix, and `stop`
# leaves no process behind. Uses its own root and port so it never meets a real installation.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
ROOT=$(mktemp -d /var/tmp/nodekit-smoke.XXXXXX)
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
export NODEKIT_ROOT=$ROOT NODEKIT_PORT=$PORT NODEKIT_PROFILE=${NODEKIT_PROFILE:-debug}
NODEKIT=$REPO/target/$NODEKIT_PROFILE/nodekit

fail() { echo "start-command: FAILED: $*" >&2; exit 1; }
cleanup() {
	bash "$REPO/install/local/start.sh" stop >/dev/null 2>&1 || true
	rm -rf "$ROOT"
}
trap cleanup EXIT

bash "$REPO/install/local/start.sh" | tee "$ROOT/start.out"
grep -q "buildctl --addr tcp://127.0.0.1:$PORT" "$ROOT/start.out" || fail "no buildctl address printed"
[[ $("$NODEKIT" --addr "tcp://127.0.0.1:$PORT" health) == SERVING ]] || fail "tcp not serving"
[[ $("$NODEKIT" --addr "unix://$ROOT/nodekitd.sock" health) == SERVING ]] || fail "unix not serving"
daemon_pid=$(cat "$ROOT/nodekitd.pid")
containerd_pid=$(cat "$ROOT/containerd/containerd.pid")
bash "$REPO/install/local/start.sh" stop
for pid in "$daemon_pid" "$containerd_pid"; do
	# A zombie (state Z) is already dead; only a live process is a failure.
	state=$(ps -o stat= -p "$pid" 2>/dev/null || true)
	[[ -z $state || $state == Z* ]] || fail "process $pid still running after stop"
done
echo "start-command: ok"
