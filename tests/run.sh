#!/usr/bin/env bash
# THE test command: bash tests/run.sh [extra cargo test args...]
#
# Brings up the real test environment (private containerd + local registry +
# base images, see tests/env/up.sh), then runs, from the repo root:
#   cargo fmt --all -- --check
#   cargo clippy --workspace --all-targets -- -D warnings
#   cargo build --workspace --bins
#   install/image.sh --static-only --profile dev (the DaemonSet image's nodekitd)
#   the static test frontend (tests/frontend, for the gateway.v0 frontend image tests)
#   cargo test --workspace "$@"
#   tests/smoke/start-command.sh (the README's start command, end to end)
# All three run even if an earlier one fails; the exit status is non-zero if
# any failed. The environment is taken down on exit unless NODEKIT_KEEP_ENV=1
# (then `source ${NODEKIT_TESTENV:-/var/tmp/nodekit-testenv}/env` and rerun
# single tests with cargo directly; tests/env/down.sh when done).
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
readonly REPO
STATE=$(realpath -m -- "${NODEKIT_TESTENV:-/var/tmp/nodekit-testenv}")
export NODEKIT_TESTENV=$STATE

teardown() {
	if [[ ${NODEKIT_KEEP_ENV:-0} == 1 ]]; then
		echo "run: NODEKIT_KEEP_ENV=1: environment left up; source $STATE/env, tests/env/down.sh to stop it" >&2
		return 0
	fi
	bash "$REPO/tests/env/down.sh" >&2 || echo "run: warning: tests/env/down.sh failed" >&2
}

# step NAME CMD...: run CMD, remember NAME if it fails.
FAILED=()
TEST_SUMMARY=""
step() {
	local name=$1
	shift
	echo "run: == $name" >&2
	if ! "$@"; then
		FAILED+=("$name")
	fi
}

# cargo test, then one closing line with the totals over every test binary (cargo's own last
# line is that of the last crate's doc tests, usually "0 passed").
cargo_test() {
	local log
	log=$(mktemp)
	local status=0
	cargo test --workspace "$@" 2>&1 | tee "$log" || status=$?
	awk '/^test result:/ { for (i = 1; i < NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i; if ($(i+1) ~ /^ignored/) s += $i } }
		END { printf "cargo-test: %d passed, %d failed, %d skipped\n", p, f, s }' "$log" >"$log.sum"
	TEST_SUMMARY=$(<"$log.sum")
	rm -f "$log" "$log.sum"
	return "$status"
}

main() {
	# Armed before up.sh so that a half-started environment is taken down too.
	trap teardown EXIT
	# Without these, a signal would kill bash without running the EXIT trap.
	trap 'exit 130' INT
	trap 'exit 143' TERM
	if [[ ${CI:-} == true ]]; then
		# A fresh clone gains nothing from incremental state; it only costs disk.
		export CARGO_INCREMENTAL=0
	fi
	df -h "$REPO" | sed 's/^/run: disk: /' >&2
	bash "$REPO/tests/env/up.sh"
	# shellcheck source=/dev/null # written by up.sh
	source "$STATE/env"
	cd "$REPO"
	step "cargo fmt" cargo fmt --all -- --check
	step "cargo clippy" cargo clippy --workspace --all-targets -- -D warnings
	# The crash test runs the nodekitd binary itself (kill -9 needs a process).
	step "cargo build" cargo build --workspace --bins
	# The static nodekitd of the image the DaemonSet test builds (tests/install/pod.rs).
	step "static nodekitd" bash "$REPO/install/image.sh" --static-only --profile dev
	# The program of the frontend image the gateway.v0 tests build (tests/api/frontend_image.rs):
	# static like the image's nodekitd, as the image has nothing else.
	step "static test frontend" env RUSTFLAGS="-C target-feature=+crt-static" \
		cargo build --quiet --target "$(uname -m)-unknown-linux-gnu" -p nodekit-test-frontend
	step "cargo test" cargo_test "$@"
	step "start command" bash "$REPO/tests/smoke/start-command.sh"
	if ((${#FAILED[@]})); then
		echo "run: FAILED: ${FAILED[*]}" >&2
		echo "${TEST_SUMMARY:-cargo-test: 0 passed, 1 failed}"
		exit 1
	fi
	echo "run: all passed" >&2
	echo "${TEST_SUMMARY:-cargo-test: 0 passed, 0 failed}"
}

main "$@"
