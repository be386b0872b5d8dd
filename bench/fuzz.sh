#!/usr/bin/env bash
# Runs every fuzz target (fuzz/, cargo fuzz on the nightly toolchain) for a bounded time and
# prints the executions each made and any crash it found. Not part of CI's run.
#   bash bench/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]
# The corpora live in $NODEKIT_FUZZ_DIR (default /var/tmp/nodekit-fuzz), seeded from the test
# suites (the conformance cases' Dockerfiles, references and platforms, the file-sync tests'
# packet streams, the bundle tests' bundles, the install's and buildkitd's configurations), and
# grow run to run.
# A crash leaves its input under fuzz/artifacts/TARGET/; `cargo +nightly fuzz run TARGET FILE`
# replays it. Needs `cargo install cargo-fuzz`.
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
readonly REPO
SECONDS_PER_TARGET=${1:-60}
shift || true
CORPORA=${NODEKIT_FUZZ_DIR:-/var/tmp/nodekit-fuzz}

# seed TARGET DIR: the test suites' inputs for TARGET, into DIR.
seed() {
	local name
	case $1 in
	dockerfile_parse)
		for case_dir in "$REPO"/tests/dockerfile/cases/*/; do
			[[ -f $case_dir/Dockerfile ]] && cp "$case_dir/Dockerfile" "$2/$(basename "$case_dir")"
		done
		;;
	reference_platform)
		for name in busybox docker.io/library/busybox:1.36 127.0.0.1:5000/nodekit/busybox:1 \
			"busybox@sha256:$(printf '0%.0s' {1..64})" linux/amd64 linux/arm64/v8 windows/amd64; do
			printf '%s' "$name" >"$2/$(printf '%s' "$name" | sha256sum | cut -c1-16)"
		done
		;;
	filesync_receive)
		# The streams the file-sync tests feed their receivers (crafted ones, and real senders').
		NODEKIT_FUZZ_SEED_DIR=$2 cargo test -q -p nodekit-filesync --manifest-path "$REPO/Cargo.toml" \
			>&2
		;;
	cache_bundle)
		# The bundles the bundle tests read (valid, cut short, damaged, of other versions).
		NODEKIT_FUZZ_SEED_DIR=$2 cargo test -q -p cachestore --lib --manifest-path "$REPO/Cargo.toml" \
			bundle:: >&2
		;;
	config_file)
		cp "$REPO/install/nodekitd.toml" "$2/install"
		cp "$REPO/install/kubernetes/base/nodekitd.toml" "$2/kubernetes"
		# buildkitd.toml's own keys, honoured or reported.
		cat >"$2/buildkitd" <<-'TOML'
			debug = true
			root = "/var/lib/buildkit"
			insecure-entitlements = ["network.host", "security.insecure"]
			[grpc]
			address = ["tcp://0.0.0.0:1234", "unix:///run/buildkit/buildkitd.sock"]
			debugAddress = "0.0.0.0:6060"
			uid = 0
			gid = 0
			[grpc.tls]
			cert = "/etc/buildkit/tls.crt"
			key = "/etc/buildkit/tls.key"
			ca = "/etc/buildkit/tlsca.crt"
			[log]
			format = "json"
			[dns]
			nameservers = ["1.1.1.1"]
			options = ["edns0"]
			searchDomains = ["example.com"]
			[history]
			maxAge = 172800
			maxEntries = 50
			[worker.oci]
			enabled = false
			[worker.containerd]
			address = "/run/containerd/containerd.sock"
			platforms = ["linux/amd64", "linux/arm64"]
			namespace = "buildkit"
			gc = true
			gckeepstorage = 9000
			[[worker.containerd.gcpolicy]]
			keepBytes = 512000000
			keepDuration = 172800
			filters = ["type==source.local", "type==exec.cachemount"]
			[registry."docker.io"]
			mirrors = ["mirror.example.com"]
			http = true
			insecure = true
			[[registry."docker.io".keypair]]
			key = "/etc/config/key.pem"
			cert = "/etc/config/cert.pem"
			[frontend."gateway.v0"]
			enabled = true
			allowedRepositories = ["docker.io/docker/dockerfile"]
		TOML
		;;
	esac
}

cd "$REPO/fuzz"
cargo +nightly fuzz build -O >&2
mapfile -t targets < <(if (($#)); then printf '%s\n' "$@"; else cargo +nightly fuzz list; fi)
failed=0
for target in "${targets[@]}"; do
	corpus=$CORPORA/$target
	mkdir -p "$corpus"
	[[ -n $(ls -A "$corpus") ]] || seed "$target" "$corpus"
	log=$CORPORA/$target.log
	if cargo +nightly fuzz run -O "$target" "$corpus" -- \
		-max_total_time="$SECONDS_PER_TARGET" -timeout=10 -rss_limit_mb=2048 >"$log" 2>&1; then
		runs=$(grep -oE '^Done [0-9]+ runs' "$log" | tail -1)
		echo "fuzz $target: ${runs:-?} in ${SECONDS_PER_TARGET} s, no crash"
	else
		failed=1
		echo "fuzz $target: FAILED (see $log and fuzz/artifacts/$target/)"
		grep -E 'panicked|ERROR|SUMMARY|Test unit written' "$log" | head -5
	fi
done
exit "$failed"
