#!/usr/bin/env bash
# mmdebstrap customize hook: $1 the root file system, $2 the repository, $3 the image version, $4 a fault
# switch ("" or "health"). Installs the agent's units from systemd/, the user, and enables the services.
set -euo pipefail
R=$1 REPO=$2 VERSION=$3 FAULT=$4
inroot() { chroot "$R" "$@"; }

install -m 0644 "$REPO/systemd/edge-agent.service" "$R/etc/systemd/system/edge-agent.service"
install -d "$R/etc/polkit-1/rules.d"
install -m 0644 "$REPO/systemd/edge-agent-reboot.rules" "$R/etc/polkit-1/rules.d/50-edge-agent.rules"
# A fixed uid/gid: files on the data partition keep their owner in every slot and every image version.
inroot groupadd --system --gid 800 edge-agent
inroot useradd --system --uid 800 --gid edge-agent --home-dir /data/edge-agent --no-create-home \
  --shell /usr/sbin/nologin edge-agent
install -d "$R/etc/edge-agent" "$R/efi" "$R/data"
ln -sf /data/edge-agent/config.toml "$R/etc/edge-agent/config.toml"

install -d "$R/etc/edge-image"
echo "$VERSION" >"$R/etc/edge-image/version"
if [ "$FAULT" = health ]; then
  # The rollback test's bundle: an agent whose config is refused at start, so it never reaches READY.
  cat >"$R/etc/systemd/system/edge-agent.service.d/fault.conf" <<'CONF'
[Service]
Environment=EDGE_AGENT__MEDIA__SEGMENT_SECONDS=999
CONF
  echo "health" >"$R/etc/edge-image/fault"
fi

inroot systemctl enable edge-agent.service edge-firstboot.service edge-health.service systemd-networkd.service systemd-timesyncd.service >/dev/null 2>&1
inroot systemctl mask systemd-networkd-wait-online.service >/dev/null 2>&1 || true
# Kernel modules a transcoder box has no use for: sound, radio (Wi-Fi, Bluetooth), capture and tuner cards,
# InfiniBand, staging drivers, sensors (iio), and nouveau (NVIDIA boxes run NVIDIA's driver for NVENC).
# What stays: storage (NVMe, SATA, virtio, USB, MMC), Ethernet, the DRM drivers VAAPI needs (i915, amdgpu,
# radeon), device mapper (dm-verity for RAUC's bundles), file systems, input.
for kdir in "$R"/usr/lib/modules/*/; do
  k=$kdir/kernel
  rm -rf "$k/sound" "$k/drivers/media" "$k/drivers/net/wireless" "$k/drivers/bluetooth" "$k/net/wireless" \
    "$k/net/mac80211" "$k/net/bluetooth" "$k/drivers/infiniband" "$k/drivers/staging" "$k/drivers/iio" \
    "$k/drivers/isdn" "$k/drivers/gpu/drm/nouveau" "$k/net/sunrpc" "$k/fs/nfs" "$k/fs/ocfs2" "$k/fs/gfs2"
  inroot depmod "$(basename "$kdir")"
done
# A read-only root: systemd makes a transient machine id at boot, /var is a tmpfs (systemd.volatile=state).
: >"$R/etc/machine-id"
rm -f "$R/var/lib/dbus/machine-id"
rm -rf "$R/var/cache/apt/"*.bin "$R/var/lib/apt/lists/"* "$R/var/log/"*.log "$R/var/cache/ldconfig/aux-cache"
test -e "$R/vmlinuz" && test -e "$R/initrd.img" || { echo "customize: no /vmlinuz or /initrd.img in the root" >&2; exit 1; }
