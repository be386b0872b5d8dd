# What the bench scripts share; sourced, never run. Each script sets REPO and `set -euo pipefail`
# first.

# bench_env: the test environment (containerd, the loopback registry) up and its variables set.
bench_env() {
	bash "$REPO/tests/env/up.sh" >&2
	# shellcheck source=/dev/null # written by up.sh
	source "${NODEKIT_TESTENV:-/var/tmp/nodekit-testenv}/env"
}

# release_binaries: NODEKITD and NODEKIT, the release builds unless both are given.
release_binaries() {
	[[ -n ${NODEKITD:-} && -n ${NODEKIT:-} ]] && return 0
	cargo build -q --release -p nodekitd -p nodekit
	NODEKITD=${CARGO_TARGET_DIR:-$REPO/target}/release/nodekitd
	NODEKIT=${CARGO_TARGET_DIR:-$REPO/target}/release/nodekit
}

millis() { date +%s%3N; }
median() { sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
settle() { sync; echo 3 >/proc/sys/vm/drop_caches; }

# remove_namespace NS: the images a bench's daemon left in containerd namespace NS, then NS.
remove_namespace() {
	local ctr=(ctr -a "$NODEKIT_TEST_CONTAINERD_SOCK") image
	for image in $("${ctr[@]}" -n "$1" images ls -q 2>/dev/null); do
		"${ctr[@]}" -n "$1" images rm --sync "$image" >/dev/null 2>&1 || true
	done
	"${ctr[@]}" namespaces rm "$1" >/dev/null 2>&1 ||
		echo "bench: namespace $1 is left with something" >&2
}

# remove_repositories REPO...: each repository's tag 1 out of the test registry (its manifest
# or index deleted), then the registry's garbage collected. Nothing else writes to the test registry
# meanwhile.
remove_repositories() {
	local repo digest
	for repo in "$@"; do
		repo=http://$NODEKIT_TEST_REGISTRY/v2/$repo/manifests
		digest=$(curl -sfI -H "Accept: application/vnd.oci.image.manifest.v1+json" \
			-H "Accept: application/vnd.oci.image.index.v1+json" "$repo/1" |
			awk -F': ' 'tolower($1) == "docker-content-digest" { print $2 }' | tr -d '\r') || continue
		[[ -n $digest ]] && curl -sf -X DELETE "$repo/$digest" >/dev/null || true
	done
	docker-registry garbage-collect "$NODEKIT_TESTENV/registry/config.yml" >/dev/null 2>&1 || true
}
