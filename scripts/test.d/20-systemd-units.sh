#!/usr/bin/env bash
# Lint the unit files offline, treat any warning as failure, and hold the hardening score.
set -euo pipefail
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
mkdir -p "$root/etc/systemd/system" "$root/usr/bin" "$root/usr/lib/systemd"
# The stock units (targets, slices) that ours refers to.
cp -r /lib/systemd/system "$root/usr/lib/systemd/"
cp systemd/*.service "$root/etc/systemd/system/"
# The unit's ExecStart must exist in the root for verify to accept it.
printf '#!/bin/sh\n' > "$root/usr/bin/edge-agent"; chmod +x "$root/usr/bin/edge-agent"
for u in systemd/*.service; do
  name=$(basename "$u")
  out=$(systemd-analyze verify --root="$root" "/etc/systemd/system/$name" 2>&1 || true)
  # verify also reports unrelated units of the build host when not run in a full root; keep only ours.
  ours=$(printf '%s\n' "$out" | grep -F "$name" || true)
  if [ -n "$ours" ]; then echo "$ours"; echo "systemd-analyze verify: $name has problems"; exit 1; fi
  score=$(systemd-analyze security --offline=yes --root="$root" --threshold=30 "$name" 2>&1 | tail -1)
  echo "$name: $score"
  systemd-analyze security --offline=yes --root="$root" --threshold=30 "$name" >/dev/null
done
# The chain drop-in: the unit with it installed must verify as cleanly, and keep its score.
mkdir -p "$root/etc/systemd/system/edge-agent.service.d" "$root/etc/edge-agent"
cp systemd/edge-agent-chain.conf "$root/etc/systemd/system/edge-agent.service.d/chain.conf"
printf 'x\n' > "$root/etc/edge-agent/keystore-password"
out=$(systemd-analyze verify --root="$root" /etc/systemd/system/edge-agent.service 2>&1 || true)
ours=$(printf '%s\n' "$out" | grep -E 'edge-agent|chain\.conf' || true)
if [ -n "$ours" ]; then echo "$ours"; echo "systemd-analyze verify: edge-agent.service with chain.conf has problems"; exit 1; fi
echo "edge-agent.service + chain.conf: $(systemd-analyze security --offline=yes --root="$root" --threshold=30 edge-agent.service 2>&1 | tail -1)"
