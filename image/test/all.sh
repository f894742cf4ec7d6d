#!/usr/bin/env bash
# Builds the disk and the bundles the QEMU test installs, then runs image/test/run.sh. Prints the figures of
# BENCHMARKS.md ("image: ..."): build times, sizes; run.sh adds boot, download and install times.
#   AGENT   the edge-agent binary to put into the images (default: the release build)
#   OUT     where the image and bundles go (default: out/image-test; removed after a passing run unless KEEP=1)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
T=${CARGO_TARGET_DIR:-$ROOT/target}
AGENT=${AGENT:-$T/release/edge-agent}
OUT=${OUT:-$ROOT/out/image-test}
rm -rf "$OUT"
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct)}
V1=1.0.0-test V2=1.1.0-test
figure() { echo "figure: $*"; }
t0=$(date +%s)
image/build.sh --out "$OUT" --agent "$AGENT" --version "$V1"
t1=$(date +%s)
image/build.sh --out "$OUT" --agent "$AGENT" --version "$V2" --bundle-only >/dev/null
t2=$(date +%s)
image/build.sh --out "$OUT" --agent "$AGENT" --version "$V2-fault" --fault health --bundle-only >/dev/null
# The three refusals (a wrong SHA-256, another signer, one flipped byte) use a small bundle of version 2: the
# box turns each down for its hash, its signature or its data, which a 4 MiB payload tests as well as the
# full one, without three more downloads and a partial install of the full bundle under emulation.
mkdir -p "$OUT/small"
echo "a payload for the refusal tests, never installed" >"$OUT/small/README"
openssl rand -out "$OUT/small/noise" 262144 # (RAUC wants a squashfs of more than one block)
mke2fs -q -t ext4 -L rootfs -d "$OUT/small" "$OUT/small.ext4" 4M >/dev/null
image/bundle.sh "$OUT/small.ext4" "$V2" "$OUT/keys/update.pem" "$OUT/keys/update.key" "$OUT/edge-$V2-small.raucb"
# The small bundle signed by a key the box does not trust. (rauc resign checks the old signature and the new
# one against its keyring: give it both certificates.)
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 30 \
  -subj "/CN=not the update key" -keyout "$OUT/other.key" -out "$OUT/other.pem" 2>/dev/null
cat "$OUT/keys/update.pem" "$OUT/other.pem" >"$OUT/both.pem"
rauc resign --cert "$OUT/other.pem" --key "$OUT/other.key" --keyring "$OUT/both.pem" \
  "$OUT/edge-$V2-small.raucb" "$OUT/edge-$V2-other-key.raucb" >/dev/null 2>&1 \
  || { echo "image test: rauc resign failed" >&2; exit 1; }
figure "build_disk_s=$((t1 - t0)) build_bundle_s=$((t2 - t1)) (package download cached: $( [ -n "${IMAGE_CACHE_WARM:-}" ] && echo yes || echo as found))"
figure "disk_bytes=$(stat -c %s "$OUT/disk.img") disk_mapped_bytes=$(( $(du -B1 "$OUT/disk.img" | cut -f1) ))" \
  "rootfs_ext4_bytes=$(stat -c %s "$OUT/rootfs.ext4") bundle_bytes=$(stat -c %s "$OUT/edge-$V2.raucb")"
# The slot image is in the disk and the bundles now: 1.3 GB less on the disk while the box boots (KEEP=1
# keeps everything, as run.sh keeps its work directory)
[ -n "${KEEP:-}" ] || rm -f "$OUT/rootfs.ext4"
IMAGE_DIR=$OUT V1=$V1 V2=$V2 BUNDLE_V2=$OUT/edge-$V2.raucb BUNDLE_FAULT=$OUT/edge-$V2-fault.raucb \
  BUNDLE_SMALL=$OUT/edge-$V2-small.raucb BUNDLE_OTHER_KEY=$OUT/edge-$V2-other-key.raucb \
  EDGE_FLEET=$T/debug/edge-fleet AGENT=$AGENT bash image/test/run.sh
[ -n "${KEEP:-}" ] || rm -rf "$OUT"
