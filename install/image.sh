#!/usr/bin/env bash
# Builds nodekitd's image (install/Dockerfile) with a running nodekitd: the image nodekit's
# DaemonSet runs (install/kubernetes). On a node where install/local/start.sh runs nodekitd:
#
#   bash install/image.sh [--addr ADDR] [--name NAME] [--platform P[,P...]] [--profile PROFILE]
#                         [-- CLIENT-FLAGS...]
#
#   --addr      nodekitd's address (default tcp://127.0.0.1:2375)
#   --name      the image's name (default nodekit.local/nodekitd:0.1.0, as install/kubernetes)
#   --platform  linux/amd64, linux/arm64 or both, comma-separated (default: this machine's).
#               Another architecture than this machine's needs its Rust target and C cross
#               compiler: `rustup target add aarch64-unknown-linux-gnu` and
#               `apt-get install gcc-aarch64-linux-gnu libc6-dev-arm64-cross`, and Debian's
#               arm64 packages for its emulators (`dpkg --add-architecture arm64; apt-get update`).
#   --profile   cargo profile of nodekitd (default release)
#   --static-only  only build the static nodekitd for this machine and print its path
#   CLIENT-FLAGS are given to the client before `build`, e.g. --tlscacert F --tlscert F --tlskey F.
#
# The client is $BUILDCTL (default: buildctl when on PATH, else nodekit's own client, built here).
# NODEKITD_BINARY=FILE uses a static nodekitd already built for this machine's architecture.
# NODEKIT_IMAGE_EMULATORS="aarch64 arm ..." picks the emulators (default: every architecture
# nodekit emulates but the image's own; about 11 MB each).
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
readonly REPO
ADDR=tcp://127.0.0.1:2375
NAME=nodekit.local/nodekitd:0.1.0
PLATFORMS=
PROFILE=release
STATIC_ONLY=0
CLIENT_FLAGS=()
readonly ALL_EMULATORS=(x86_64 aarch64 arm i386 riscv64 ppc64le s390x mips64el loongarch64)

die() { echo "image.sh: $*" >&2; exit 1; }
log() { echo "image.sh: $*" >&2; }

parse_args() {
	while (($#)); do
		case $1 in
		--addr) ADDR=${2:?--addr needs an address}; shift 2 ;;
		--name) NAME=${2:?--name needs an image name}; shift 2 ;;
		--platform) PLATFORMS=${2:?--platform needs platforms}; shift 2 ;;
		--profile) PROFILE=${2:?--profile needs a cargo profile}; shift 2 ;;
		--static-only) STATIC_ONLY=1; shift ;;
		--) shift; CLIENT_FLAGS=("$@"); return 0 ;;
		-h | --help) sed -n '2,24p' "$0"; exit 0 ;;
		*) die "unknown argument $1 (see --help)" ;;
		esac
	done
}

host_arch() {
	case $(uname -m) in
	x86_64) echo amd64 ;;
	aarch64) echo arm64 ;;
	*) die "no image for a $(uname -m) machine: linux/amd64 and linux/arm64 are built" ;;
	esac
}

# The OCI architecture's Rust target, qemu name and Debian architecture.
rust_triple() { case $1 in amd64) echo x86_64-unknown-linux-gnu ;; arm64) echo aarch64-unknown-linux-gnu ;; *) die "no image for linux/$1: linux/amd64 and linux/arm64 are built" ;; esac; }
qemu_name() { case $1 in amd64) echo x86_64 ;; arm64) echo aarch64 ;; esac; }

# static_nodekitd ARCH: builds a statically linked nodekitd (with glibc's static libc: its
# malloc is the one nodekitd's memory settings tune) and prints its path.
static_nodekitd() {
	local arch=$1 triple
	if [[ -n ${NODEKITD_BINARY:-} && $arch == "$(host_arch)" ]]; then
		echo "$NODEKITD_BINARY"
		return 0
	fi
	triple=$(rust_triple "$arch")
	local env=(RUSTFLAGS="-C target-feature=+crt-static")
	if [[ $arch != "$(host_arch)" ]]; then
		local gcc=${triple%%-unknown-*}-linux-gnu-gcc upper=${triple^^}
		command -v "$gcc" >/dev/null || die "linux/$arch needs $gcc (see --help)"
		env+=("CARGO_TARGET_${upper//-/_}_LINKER=$gcc" "CC_${triple//-/_}=$gcc")
	fi
	log "building a static nodekitd for linux/$arch ($PROFILE)"
	(cd "$REPO" && env "${env[@]}" cargo build --quiet --profile "$PROFILE" --target "$triple" -p nodekitd --bin nodekitd) >&2
	static_path "$triple"
}

# static_path TRIPLE: where cargo leaves the static nodekitd of TRIPLE (its own target
# directory, so the usual build keeps its flags).
static_path() {
	local dir=$PROFILE
	[[ $PROFILE == dev ]] && dir=debug
	echo "$REPO/target/$1/$dir/nodekitd"
}

# emulators ARCH DIR: the static qemu of every other architecture into DIR.
emulators() {
	local arch=$1 dir=$2 source=/usr/bin name own
	own=$(qemu_name "$arch")
	if [[ $arch != "$(host_arch)" ]]; then
		source=$(debian_qemu "$arch")
	fi
	mkdir -p "$dir"
	for name in ${NODEKIT_IMAGE_EMULATORS:-${ALL_EMULATORS[*]}}; do
		[[ $name == "$own" ]] && continue
		[[ -x $source/qemu-$name-static ]] || die "no $source/qemu-$name-static (apt-get install qemu-user-static)"
		install -m 0755 "$source/qemu-$name-static" "$dir/"
	done
}

# debian_qemu ARCH: a directory with Debian's qemu-user-static built for ARCH.
debian_qemu() {
	local arch=$1 work
	work=$STAGE/deb-$arch
	mkdir -p "$work"
	(cd "$work" && apt-get download -q "qemu-user-static:$arch" >/dev/null) ||
		die "cannot download qemu-user-static:$arch (dpkg --add-architecture $arch; apt-get update)"
	dpkg-deb -x "$work"/qemu-user-static_*.deb "$work/root"
	echo "$work/root/usr/bin"
}

rootfs() {
	local root=$STAGE/rootfs
	mkdir -p "$root/etc/ssl/certs" "$root/etc/nodekit" "$root/tmp"
	chmod 1777 "$root/tmp"
	[[ -s /etc/ssl/certs/ca-certificates.crt ]] || die "no CA certificates (apt-get install ca-certificates)"
	install -m 0644 /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/"
	install -m 0644 "$REPO/install/nodekitd.toml" "$root/etc/nodekit/nodekitd.toml"
	echo "root:x:0:0:root:/root:/usr/local/bin/nodekitd" >"$root/etc/passwd"
	echo "root:x:0:" >"$root/etc/group"
	# The resolver of a static glibc reads it: /etc/hosts first, then DNS.
	echo "hosts: files dns" >"$root/etc/nsswitch.conf"
	# Kubernetes mounts its own; this one is for `ctr run` and the like.
	printf '127.0.0.1 localhost\n::1 localhost\n' >"$root/etc/hosts"
}

client() {
	if [[ -n ${BUILDCTL:-} ]]; then
		echo "$BUILDCTL"
	elif command -v buildctl >/dev/null; then
		command -v buildctl
	else
		(cd "$REPO" && cargo build --quiet --release -p nodekit --bin nodekit)
		echo "$REPO/target/release/nodekit"
	fi
}

main() {
	parse_args "$@"
	if ((STATIC_ONLY)); then
		static_nodekitd "$(host_arch)"
		return 0
	fi
	[[ -n $PLATFORMS ]] || PLATFORMS=linux/$(host_arch)
	STAGE=$(mktemp -d)
	trap 'rm -rf "$STAGE"' EXIT
	rootfs
	local platform arch binary
	for platform in ${PLATFORMS//,/ }; do
		arch=${platform#linux/}
		[[ $platform == linux/* && $arch != */* ]] || die "unsupported platform $platform"
		mkdir -p "$STAGE/$arch"
		# An assignment, so that a failed build stops the script here (set -e).
		binary=$(static_nodekitd "$arch")
		install -m 0755 "$binary" "$STAGE/$arch/nodekitd"
		emulators "$arch" "$STAGE/$arch/qemu"
	done
	local buildctl
	buildctl=$(client)
	log "building $NAME for $PLATFORMS through $ADDR with $buildctl"
	"$buildctl" --addr "$ADDR" "${CLIENT_FLAGS[@]}" build --frontend dockerfile.v0 \
		--local context="$STAGE" --local dockerfile="$REPO/install" \
		--opt platform="$PLATFORMS" --output type=image,name="$NAME"
}

main "$@"
