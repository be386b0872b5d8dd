#!/usr/bin/env bash
# Build the tests' base images offline, as OCI image archives, from
# busybox-static (amd64 from the host, arm64 from tests/env/install.sh's cache).
#
#   base-images.sh DIR [NAME:TAG ...]
#
# Each NAME gets DIR/<NAME with / and : replaced by _>.tar: an OCI layout whose
# index.json points at one 2-arch OCI image index (linux/amd64, linux/arm64/v8).
# Default names: nodekit.test/busybox:1 and
# 127.0.0.1:${NODEKIT_TEST_REGISTRY_PORT:-5000}/nodekit/busybox:1.
# DIR/images.tsv lists "name<TAB>archive<TAB>index digest" per image.
#
# Output is byte-identical across runs (sorted tar entries, fixed owners, mtime
# 0, gzip -n, jq key order), so digests are stable. A stamp over the inputs
# makes a rerun with the same inputs a no-op.
# Needs root: the rootfs is chowned so that tar records the right owners.
set -euo pipefail

readonly CACHE=${NODEKIT_TESTENV_CACHE:-/var/cache/nodekit-testenv}
readonly BUSYBOX_AMD64=${NODEKIT_BUSYBOX_AMD64:-/bin/busybox}
readonly BUSYBOX_ARM64=${NODEKIT_BUSYBOX_ARM64:-$CACHE/busybox-arm64/bin/busybox}
readonly PATH_ENV=PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
readonly EPOCH=1970-01-01T00:00:00Z
readonly MT_INDEX=application/vnd.oci.image.index.v1+json
readonly MT_MANIFEST=application/vnd.oci.image.manifest.v1+json
readonly MT_CONFIG=application/vnd.oci.image.config.v1+json
readonly MT_LAYER=application/vnd.oci.image.layer.v1.tar+gzip
# Deterministic tar: ustar (pax headers would carry PIDs and atimes).
readonly TAR_FLAGS=(--format=ustar --sort=name --numeric-owner --mtime=@0)

die() { echo "base-images: $*" >&2; exit 1; }

archive_name() { local n=${1//\//_}; echo "${n//:/_}.tar"; }

# The tag of NAME:TAG (a ':' after the last '/').
tag_of() {
	local last=${1##*/}
	[[ $last == *:* ]] || die "image name $1 has no tag"
	echo "${last##*:}"
}

check_inputs() {
	[[ $(id -u) -eq 0 ]] || die "must run as root (chown of the rootfs)"
	[[ -x $BUSYBOX_AMD64 ]] || die "no $BUSYBOX_AMD64: apt-get install busybox-static"
	# The 'busybox' package also ships /bin/busybox, dynamically linked: useless
	# in an image without libc.
	if ldd "$BUSYBOX_AMD64" >/dev/null 2>&1; then
		die "$BUSYBOX_AMD64 is dynamically linked: install busybox-static"
	fi
	[[ -f $BUSYBOX_ARM64 ]] || die "no $BUSYBOX_ARM64: run tests/env/install.sh"
}

# A hash over everything the output depends on.
input_stamp() {
	{
		sha256sum <"${BASH_SOURCE[0]}"
		sha256sum <"$BUSYBOX_AMD64"
		sha256sum <"$BUSYBOX_ARM64"
		printf '%s\n' "$@"
		tar --version | head -n 1
		gzip --version | head -n 1
		jq --version
	} | sha256sum | cut -d' ' -f1
}

up_to_date() {
	local out=$1 stamp=$2 name
	shift 2
	[[ -f $out/stamp && $(<"$out/stamp") == "$stamp" && -f $out/images.tsv ]] || return 1
	for name in "$@"; do
		[[ -f $out/$(archive_name "$name") ]] || return 1
	done
}

busybox_version() {
	grep -ao 'BusyBox v[0-9][^ ]* ([^)]*)' "$1" | head -n 1
}

write_etc() {
	local etc=$1
	cat >"$etc/passwd" <<'EOF'
root:x:0:0:root:/root:/bin/sh
builder:x:1000:1000:builder:/home/builder:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
EOF
	cat >"$etc/group" <<'EOF'
root:x:0:
staff:x:50:
builder:x:1000:
nogroup:x:65534:
EOF
	chmod 0644 "$etc/passwd" "$etc/group"
}

# make_rootfs DEST BUSYBOX: busybox, one /bin symlink per applet, users.
make_rootfs() {
	local root=$1 bb=$2 applet
	mkdir -p "$root"/{bin,etc,home/builder,root,tmp}
	cp "$bb" "$root/bin/busybox"
	chmod 0755 "$root/bin/busybox"
	while read -r applet; do
		ln -s busybox "$root/bin/$applet"
	done <<<"$APPLETS"
	write_etc "$root/etc"
	# Each image name gets its own content, so that pulling one image really transfers layers
	# the other image's import did not bring.
	printf '%s\n' "$IMAGE_NAME" >"$root/etc/image-name"
	chmod 0644 "$root/etc/image-name"
	chmod 0755 "$root" "$root"/{bin,etc,home,home/builder}
	chmod 0700 "$root/root"
	chmod 1777 "$root/tmp"
	chown -hR 0:0 "$root"
	chown 1000:1000 "$root/home/builder"
}

# put_blob FILE LAYOUT: move FILE to LAYOUT/blobs/sha256/<hex>; prints
# "sha256:<hex> <size>".
put_blob() {
	local file=$1 layout=$2 hex size
	hex=$(sha256sum <"$file" | cut -d' ' -f1)
	size=$(stat -c %s "$file")
	mv -f "$file" "$layout/blobs/sha256/$hex"
	chmod 0644 "$layout/blobs/sha256/$hex"
	echo "sha256:$hex $size"
}

# build_arch WORK LAYOUT ARCH VARIANT BUSYBOX: layer + config + manifest;
# prints the manifest's "digest size".
build_arch() {
	local work=$1 layout=$2 arch=$3 variant=$4 bb=$5
	local root=$work/rootfs-$arch diff_id layer config version
	make_rootfs "$root" "$bb"
	tar -C "$root" "${TAR_FLAGS[@]}" -cf "$work/layer.tar" bin etc home root tmp
	diff_id=sha256:$(sha256sum <"$work/layer.tar" | cut -d' ' -f1)
	gzip -n -9 <"$work/layer.tar" >"$work/layer.tar.gz"
	rm -f "$work/layer.tar"
	layer=$(put_blob "$work/layer.tar.gz" "$layout")
	version=$(busybox_version "$bb")

	jq -cjn --arg arch "$arch" --arg variant "$variant" --arg diff "$diff_id" \
		--arg path "$PATH_ENV" --arg epoch "$EPOCH" --arg version "$version" '
		{architecture: $arch, os: "linux"}
		+ (if $variant == "" then {} else {variant: $variant} end)
		+ {created: $epoch,
		   config: {Env: [$path], Cmd: ["sh"]},
		   rootfs: {type: "layers", diff_ids: [$diff]},
		   history: [{created: $epoch,
		              created_by: ("nodekit tests/env/base-images.sh: " + $version)}]}
	' >"$work/config.json"
	config=$(put_blob "$work/config.json" "$layout")

	jq -cjn --arg mt "$MT_MANIFEST" --arg cmt "$MT_CONFIG" --arg lmt "$MT_LAYER" \
		--arg config "$config" --arg layer "$layer" '
		def desc($mt; $ds): ($ds | split(" ")) as [$d, $s]
			| {mediaType: $mt, digest: $d, size: ($s | tonumber)};
		{schemaVersion: 2, mediaType: $mt,
		 config: desc($cmt; $config), layers: [desc($lmt; $layer)]}
	' >"$work/manifest.json"
	put_blob "$work/manifest.json" "$layout"
}

# build_index WORK LAYOUT: both arches under one image index; prints its
# "digest size".
build_index() {
	local work=$1 layout=$2 amd64 arm64
	amd64=$(build_arch "$work" "$layout" amd64 "" "$BUSYBOX_AMD64")
	arm64=$(build_arch "$work" "$layout" arm64 v8 "$BUSYBOX_ARM64")
	jq -cjn --arg mt "$MT_INDEX" --arg mmt "$MT_MANIFEST" \
		--arg amd64 "$amd64" --arg arm64 "$arm64" '
		def desc($ds; $platform): ($ds | split(" ")) as [$d, $s]
			| {mediaType: $mmt, digest: $d, size: ($s | tonumber), platform: $platform};
		{schemaVersion: 2, mediaType: $mt, manifests: [
			desc($amd64; {architecture: "amd64", os: "linux"}),
			desc($arm64; {architecture: "arm64", os: "linux", variant: "v8"})]}
	' >"$work/index.blob.json"
	put_blob "$work/index.blob.json" "$layout"
}

# write_archive LAYOUT INDEX NAME OUT: index.json naming INDEX as NAME, tar.
write_archive() {
	local layout=$1 index=$2 name=$3 out=$4 tag
	tag=$(tag_of "$name")
	jq -cjn --arg mt "$MT_INDEX" --arg index "$index" --arg name "$name" --arg tag "$tag" '
		($index | split(" ")) as [$d, $s]
		| {schemaVersion: 2, mediaType: $mt, manifests: [
			{mediaType: $mt, digest: $d, size: ($s | tonumber),
			 annotations: {"io.containerd.image.name": $name,
			               "org.opencontainers.image.ref.name": $tag}}]}
	' >"$layout/index.json"
	chmod 0644 "$layout/index.json"
	tar -C "$layout" "${TAR_FLAGS[@]}" --owner=0 --group=0 \
		-cf "$out.tmp" blobs index.json oci-layout
	mv -f "$out.tmp" "$out"
}

main() {
	[[ $# -ge 1 ]] || die "usage: $0 DIR [NAME:TAG ...]"
	local out=$1 stamp work layout index name file tsv=''
	local IMAGE_NAME
	shift
	local names=("$@")
	if ((${#names[@]} == 0)); then
		names=(nodekit.test/busybox:1 "127.0.0.1:${NODEKIT_TEST_REGISTRY_PORT:-5000}/nodekit/busybox:1")
	fi
	for name in "${names[@]}"; do tag_of "$name" >/dev/null; done
	check_inputs
	mkdir -p "$out"
	stamp=$(input_stamp "${names[@]}")
	up_to_date "$out" "$stamp" "${names[@]}" && return 0

	# The applet list comes from the amd64 binary (same busybox version).
	APPLETS=$("$BUSYBOX_AMD64" --list | grep -vx busybox | LC_ALL=C sort -u)
	work=$(mktemp -d "$out/.build.XXXXXX")
	# shellcheck disable=SC2064 # expand $work now
	trap "rm -rf '$work'" EXIT
	for name in "${names[@]}"; do
		IMAGE_NAME=$name
		layout=$(mktemp -d "$work/layout.XXXXXX")
		mkdir -p "$layout/blobs/sha256"
		chmod 0755 "$layout" "$layout/blobs" "$layout/blobs/sha256"
		printf '{"imageLayoutVersion":"1.0.0"}' >"$layout/oci-layout"
		chmod 0644 "$layout/oci-layout"
		rm -rf "$work"/rootfs-*
		index=$(build_index "$work" "$layout")
		file=$out/$(archive_name "$name")
		write_archive "$layout" "$index" "$name" "$file"
		tsv+=$(printf '%s\t%s\t%s' "$name" "$file" "${index%% *}")$'\n'
	done
	printf '%s' "$tsv" >"$out/images.tsv"
	echo "$stamp" >"$out/stamp"
	echo "base-images: built ${names[*]} in $out" >&2
}

main "$@"
