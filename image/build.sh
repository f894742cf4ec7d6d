#!/usr/bin/env bash
# Builds the appliance image (see image/README.md). Called by `./x image`; writes to out/image/:
#   disk.img, disk.img.bmap   the flashable disk: ESP, root slots A and B, data
#   rootfs.ext4               the root file system that went into slot A
#   edge-<version>.raucb      with --bundle: the signed update bundle of the same root file system
#   keys/                     the development update key (made once, when no --key/--cert is given)
#
# Options:
#   --bundle            also build the update bundle
#   --bundle-only       build only the bundle (from a fresh root file system; the disk is not rewritten)
#   --version V         image version (default: the workspace version and the commit)
#   --agent PATH        the edge-agent binary to install (default: target/release/edge-agent)
#   --key K --cert C    the update signing key and certificate (default: out/image/keys/, made if missing)
#   --fault health      a root file system whose agent fails the health gate (for the rollback test)
#   --out DIR           output directory (default: out/image)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
HERE=$ROOT/image
OUT=$ROOT/out/image
VERSION=""
AGENT=${CARGO_TARGET_DIR:-$ROOT/target}/release/edge-agent
KEY="" CERT="" FAULT="" BUNDLE=0 DISK=1
while [ $# -gt 0 ]; do
  case $1 in
    --bundle) BUNDLE=1 ;;
    --bundle-only) BUNDLE=1 DISK=0 ;;
    --version) VERSION=$2; shift ;;
    --agent) AGENT=$2; shift ;;
    --key) KEY=$2; shift ;;
    --cert) CERT=$2; shift ;;
    --fault) FAULT=$2; shift ;;
    --out) OUT=$2; shift ;;
    *) echo "image/build.sh: unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
[ "$(id -u)" -eq 0 ] || { echo "image/build.sh: run as root (mmdebstrap --mode=root, file ownership in the image)" >&2; exit 1; }
[ -x "$AGENT" ] || { echo "image/build.sh: no agent binary at $AGENT (cargo build --release -p edge-agent)" >&2; exit 1; }
case $FAULT in ""|health) ;; *) echo "image/build.sh: unknown fault $FAULT" >&2; exit 2 ;; esac

# Everything that goes into the root file system is dated at the last commit, so the same commit and package
# set give the same files (mmdebstrap clamps to SOURCE_DATE_EPOCH; mke2fs gets fixed UUIDs and hash seed).
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git -C "$ROOT" log -1 --format=%ct 2>/dev/null || date +%s)}
if [ -z "$VERSION" ]; then
  wsver=$(sed -n 's/^version = "\(.*\)"/\1/p' "$ROOT/Cargo.toml" | head -1)
  VERSION="$wsver+$(git -C "$ROOT" rev-parse --short=10 HEAD 2>/dev/null || echo local)"
fi
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
SUITE=bookworm
SLOT_SIZE=${SLOT_SIZE:-1536M}
DATA_SIZE=${DATA_SIZE:-512M}
PARTUUID_A=0e5d6a0c-1c7b-4a53-8f2e-3b2f0c6e9a12
PARTUUID_B=0e5d6a0c-1c7b-4a53-8f2e-3b2f0c6e9a13
mkdir -p "$OUT"
W=$(mktemp -d "${TMPDIR:-/tmp}/edge-image.XXXXXX")
trap 'rm -rf "$W"' EXIT
log() { printf '==> image: %s\n' "$*" >&2; }

# --- the update key: separate from the fleet PKI; the image trusts its certificate (the keyring) ---
if [ -z "$KEY$CERT" ]; then
  KEY=$OUT/keys/update.key CERT=$OUT/keys/update.pem
  if [ ! -f "$KEY" ]; then
    log "no update key given: making a development key in $OUT/keys"
    mkdir -p "$OUT/keys"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 3650 \
      -subj "/O=Edge transcoder/CN=development update key" -keyout "$KEY" -out "$CERT" 2>/dev/null
    chmod 0600 "$KEY"
  fi
fi
[ -f "$KEY" ] && [ -f "$CERT" ] || { echo "image/build.sh: --key and --cert go together" >&2; exit 2; }

# --- root file system: Debian packages (mmdebstrap, cached by package list), then the agent, its units and
# the image's own files ---
pkgs=$(grep -hvE '^\s*(#|$)' "$HERE/packages.txt" | paste -sd,)
# The cache lives in the user's cache directory, as cargo's registry does, so that every checkout on the
# machine (CI's clean clones too) shares it; it is made again after a week, for the mirror's security updates.
CACHE=${IMAGE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/edge-image}
key=$(printf '%s\n' "$SUITE" "$MIRROR" "$pkgs" | sha256sum | cut -c1-16)
base=$CACHE/base-$key.tar
[ -z "$(find "$base" -mtime +7 2>/dev/null)" ] || rm -f "$base"
if [ ! -f "$base" ]; then
  log "Debian packages: mmdebstrap $SUITE from $MIRROR"
  mkdir -p "$CACHE"
  rm -f "$CACHE"/base-*.tar
  mmdebstrap --mode=root --variant=minbase --format=tar --quiet \
    --aptopt='Apt::Install-Recommends "false"' \
    --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright' \
    --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/locale/*' \
    --dpkgopt='path-exclude=/usr/share/info/*' \
    --include="$pkgs" "$SUITE" "$base.part" "$MIRROR"
  mv "$base.part" "$base"
fi
log "root file system $VERSION${FAULT:+ (fault: $FAULT)}"
mkdir -p "$W/rootfs"
tar --numeric-owner -xpf "$base" -C "$W/rootfs"
cp -a "$HERE/rootfs/." "$W/rootfs/"
strip -o "$W/rootfs/usr/bin/edge-agent" "$AGENT"
install -m 0644 "$CERT" "$W/rootfs/etc/rauc/keyring.pem"
"$HERE/customize.sh" "$W/rootfs" "$ROOT" "$VERSION" "$FAULT"
find "$W/rootfs" -newermt "@$SOURCE_DATE_EPOCH" -exec touch --no-dereference --date="@$SOURCE_DATE_EPOCH" {} +

# The kernel and initramfs stay in the slot (GRUB loads them from it), so an update replaces them too.
rootfs_mib=$(( $(du -sxm "$W/rootfs" | cut -f1) * 110 / 100 + 64 ))
log "root file system: $(du -sxh "$W/rootfs" | cut -f1) of files; ext4 of ${rootfs_mib} MiB"
rm -f "$W/rootfs.ext4"
E2FSPROGS_FAKE_TIME=$SOURCE_DATE_EPOCH mke2fs -q -t ext4 -L rootfs -d "$W/rootfs" \
  -U 0e5d6a0c-1c7b-4a53-8f2e-3b2f0c6e9a20 -E hash_seed=0e5d6a0c-1c7b-4a53-8f2e-3b2f0c6e9a20 \
  -O ^metadata_csum_seed -b 4096 "$W/rootfs.ext4" "${rootfs_mib}M"
cp "$W/rootfs.ext4" "$OUT/rootfs.ext4"

if [ "$DISK" = 1 ]; then
  # --- EFI system partition: GRUB as the removable-media loader, its config and its environment ---
  log "EFI system partition: GRUB (x86_64-efi) with the A/B boot selection"
  mkdir -p "$W/esp/EFI/BOOT"
  grub-mkimage -O x86_64-efi -p /EFI/BOOT -o "$W/esp/EFI/BOOT/BOOTX64.EFI" \
    part_gpt fat ext2 normal linux configfile loadenv test echo regexp search reboot efi_gop all_video
  sed -e "s/@PARTUUID_A@/$PARTUUID_A/" -e "s/@PARTUUID_B@/$PARTUUID_B/" -e "s/@CMDLINE@/${KERNEL_CMDLINE:-quiet}/" \
    "$HERE/grub.cfg" >"$W/esp/EFI/BOOT/grub.cfg"
  grub-editenv "$W/esp/EFI/BOOT/grubenv" create
  grub-editenv "$W/esp/EFI/BOOT/grubenv" set ORDER="A B" A_OK=1 A_TRY=0 B_OK=0 B_TRY=0
  find "$W/esp" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +

  log "disk: genimage (GPT: esp, rootfs-a, rootfs-b, data)"
  truncate -s 1M "$W/empty-slot.img"
  sed -e "s/@PARTUUID_A@/$PARTUUID_A/" -e "s/@PARTUUID_B@/$PARTUUID_B/" \
    -e "s/@SLOT_SIZE@/$SLOT_SIZE/" -e "s/@DATA_SIZE@/$DATA_SIZE/" "$HERE/genimage.cfg" >"$W/genimage.cfg"
  mkdir -p "$W/gen-in" "$W/gen-out" "$W/gen-tmp" "$W/gen-root"
  cp -a "$W/esp/EFI" "$W/gen-in/"
  mv "$W/rootfs.ext4" "$W/empty-slot.img" "$W/gen-in/"
  E2FSPROGS_FAKE_TIME=$SOURCE_DATE_EPOCH genimage --config "$W/genimage.cfg" --rootpath "$W/gen-root" \
    --inputpath "$W/gen-in" --outputpath "$W/gen-out" --tmppath "$W/gen-tmp" >"$W/genimage.log" 2>&1 \
    || { cat "$W/genimage.log" >&2; exit 1; }
  mv "$W/gen-out/disk.img" "$OUT/disk.img"
  bmaptool -q create -o "$OUT/disk.img.bmap" "$OUT/disk.img"
  log "disk: $OUT/disk.img ($(du -h --apparent-size "$OUT/disk.img" | cut -f1), $(du -h "$OUT/disk.img" | cut -f1) mapped)"
fi

if [ "$BUNDLE" = 1 ]; then
  # --- update bundle: RAUC verity format, signed with the update key ---
  name=edge-$VERSION.raucb
  "$HERE/bundle.sh" "$OUT/rootfs.ext4" "$VERSION" "$CERT" "$KEY" "$OUT/$name"
  log "bundle: $OUT/$name ($(du -h "$OUT/$name" | cut -f1))"
  echo "$OUT/$name"
fi
