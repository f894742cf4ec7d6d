#!/usr/bin/env bash
# Signs a root file system image into a RAUC update bundle (verity format), as image/build.sh does for the
# image it builds; the image test also calls it for its small refusal bundles.
#   image/bundle.sh ROOTFS_EXT4 VERSION CERT KEY OUT_BUNDLE
set -euo pipefail
[ $# -eq 5 ] || { echo "usage: image/bundle.sh ROOTFS_EXT4 VERSION CERT KEY OUT_BUNDLE" >&2; exit 2; }
ROOTFS=$1 VERSION=$2 CERT=$3 KEY=$4 BUNDLE=$5
b=$(mktemp -d "${TMPDIR:-/tmp}/edge-bundle.XXXXXX")
trap 'rm -rf "$b"' EXIT
cp "$ROOTFS" "$b/rootfs.ext4"
cat >"$b/manifest.raucm" <<MANIFEST
[update]
compatible=edge-transcoder-amd64
version=$VERSION
description=edge transcoder appliance $VERSION

[bundle]
format=verity

[image.rootfs]
filename=rootfs.ext4
MANIFEST
rm -f "$BUNDLE"
# zstd: a tenth of gzip's time (mksquashfs's default) for a bundle of the same size
rauc bundle --cert="$CERT" --key="$KEY" --mksquashfs-args="-comp zstd -Xcompression-level 9" \
  "$b" "$BUNDLE" >/dev/null
