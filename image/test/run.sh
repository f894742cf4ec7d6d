#!/usr/bin/env bash
# The appliance image in QEMU, as a box in the field lives it. One disk (out/image/disk.img, provisioned the
# way an operator does it: `edge-fleet provision` copied onto the ESP) goes through:
#   boot 1 (slot A): provisioning imported, the agent READY, a segment PUT from the host transcoded and its HLS
#                    fetched, the box online on a real mosquitto with mutual TLS, reporting slot and version;
#                    three bad updates refused (wrong SHA-256, another signer, one flipped byte), box stays;
#                    an image rollout of version 2 from the operator console (`edge-fleet serve`), which
#                    sends the `update` command
#   boot 2 (B)       the new version passes its health gate and is kept, the rollout completes; a rollout of
#                    a build whose agent never gets READY
#   boot 3 (A)       that build fails its health gate and reboots
#   boot 4 (B)       back on the old slot by itself, the fleet told "rolled_back", the rollout halted by
#                    itself with the box's reason; an `update` command whose bundle the box fetches over
#                    PPSPP from a seeder on the host (`edge-agent swarm seed`), cut off by a power cut
#                    while the inactive slot is written
#   boot 5 (B)       the box boots the slot it was on
# and the data partition's files (config, fleet identity, keystore) are byte-identical to what was
# provisioned, after all of it.
#
# Needs: out/image/disk.img, the bundles below (scripts/test.d/70-image.sh builds them), edge-fleet and
# edge-agent (AGENT; the host's seeder), mosquitto,
# ffmpeg, qemu-system-x86_64, OVMF, mtools, python3 (the bundles' web server).
#   IMAGE_DIR           where the image and bundles are (default out/image)
#   V1 V2               the disk's version and the good update's version
#   BUNDLE_V2 BUNDLE_FAULT              the update and the build that fails its health gate
#   BUNDLE_SMALL BUNDLE_OTHER_KEY       a small bundle of V2 and the same signed by another key (refusals)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
IMG=${IMAGE_DIR:-$ROOT/out/image}
FLEET=${EDGE_FLEET:-${CARGO_TARGET_DIR:-$ROOT/target}/debug/edge-fleet}
AGENT=${AGENT:-${CARGO_TARGET_DIR:-$ROOT/target}/debug/edge-agent}
: "${V1:?}" "${V2:?}" "${BUNDLE_V2:?}" "${BUNDLE_FAULT:?}" "${BUNDLE_SMALL:?}" "${BUNDLE_OTHER_KEY:?}"
W=$(mktemp -d -t edge-image-test.XXXXXX)
# shellcheck source=image/test/qemu.sh
. "$ROOT/image/test/qemu.sh"
pids=()
cleanup() {
  vm_stop_all
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if [ -n "${KEEP:-}" ]; then echo "image test: kept $W" >&2; else rm -rf "$W"; fi
}
trap cleanup EXIT
T0=$(date +%s)
figure() { echo "figure: $*"; }
step() { printf '==> image test [%4ss] %s\n' "$(( $(date +%s) - T0 ))" "$*" >&2; }
fail() {
  echo "image test: FAILED: $*" >&2
  [ -f "$W/box.serial" ] && { echo "--- serial console (last 120 lines)" >&2; tail -n 120 "$W/box.serial" | tr -d '\r' >&2; }
  exit 1
}
# shellcheck source=scripts/lib/free-port.sh
. "$ROOT/scripts/lib/free-port.sh"
MPORT=$(free_port) HPORT=$(free_port) BPORT=$(free_port)
export EDGE_FLEET_BROKER=127.0.0.1:$MPORT EDGE_FLEET_PKI=$W/pki
step "QEMU accelerator: $ACCEL (waits x$TIMEOUT_SCALE)"

# --- the site: fleet PKI, mosquitto with mutual TLS, a web server for bundles ---
# The box reaches the host as 10.0.2.2 (QEMU user networking); the operator tool as 127.0.0.1.
"$FLEET" pki init --dir "$W/pki" --broker-host 127.0.0.1,10.0.2.2 --device box-1 >/dev/null
"$FLEET" broker-config --pki "$W/pki" --state "$W/mq-state" --port "$MPORT" --bind 127.0.0.1 \
  --user "$(id -un)" --out "$W/broker" >/dev/null
mkdir -p "$W/mq-state" "$W/www"
"$(command -v mosquitto || echo /usr/sbin/mosquitto)" -c "$W/broker/mosquitto.conf" >"$W/mosquitto.log" 2>&1 &
pids+=($!)
for f in "$BUNDLE_V2" "$BUNDLE_FAULT" "$BUNDLE_SMALL" "$BUNDLE_OTHER_KEY"; do ln -s "$f" "$W/www/"; done
# One flipped byte in the middle of the bundle's squashfs payload (its size is in the squashfs superblock, at
# byte 40): the signature still verifies (it covers the verity root hash), the data under it does not.
cp "$BUNDLE_SMALL" "$W/www/flipped.raucb"
off=$(( $(od -An -tu8 -j 40 -N 8 "$W/www/flipped.raucb" | tr -d ' ') / 2 ))
b=$(od -An -tu1 -j "$off" -N1 "$W/www/flipped.raucb" | tr -d ' ')
printf "$(printf '\\%03o' $(( b ^ 1 )))" | dd of="$W/www/flipped.raucb" bs=1 seek="$off" conv=notrunc status=none
cmp -s "$BUNDLE_SMALL" "$W/www/flipped.raucb" && fail "could not flip a byte of the small bundle"
(cd "$W/www" && exec python3 -m http.server --bind 127.0.0.1 "$BPORT") >"$W/http.log" 2>&1 &
pids+=($!)

# --- the box: flash (copy), provision, and let its journal go to the serial console for this test ---
step "provisioning box-1 and writing its disk"
echo '{"test":"keystore"}' >"$W/keystore.json"
"$FLEET" provision --pki "$W/pki" --device box-1 --broker "10.0.2.2:$MPORT" --label site=lab \
  --keystore "$W/keystore.json" --out "$W/prov" >/dev/null
cp --sparse=always "$IMG/disk.img" "$W/box.img"
ESP="$W/box.img@@1M"
mcopy -s -i "$ESP" "$W/prov/provision" ::/
mtype -i "$ESP" ::EFI/BOOT/grub.cfg | sed 's/ quiet$/ systemd.journald.forward_to_console=1/' >"$W/grub.cfg"
grep -q forward_to_console "$W/grub.cfg" || fail "could not put the journal on the console (grub.cfg changed?)"
mcopy -o -i "$ESP" "$W/grub.cfg" ::EFI/BOOT/grub.cfg

fleet_show() { "$FLEET" --json show box-1 2>/dev/null || echo '{}'; }
# wait_fleet JQ SECS: until the box's fleet record satisfies JQ.
wait_fleet() {
  local q=$1 secs=$(( $2 * TIMEOUT_SCALE )) t=0
  while [ "$t" -lt "$secs" ]; do
    fleet_show | jq -e "$q" >/dev/null 2>&1 && return 0
    sleep 2; t=$((t + 2))
  done
  echo "fleet record: $(fleet_show | jq -c '{status, t: .telemetry}')" >&2
  return 1
}
# grub_wait SLOT FROM_LINE: the firmware started GRUB and GRUB chose SLOT, after line FROM_LINE of the
# console. Once on CI the emulated box (TCG) went silent after GRUB's banner, before GRUB said which slot it
# chose; when that happens the box is powered off and on once, as its hardware watchdog would do, and the
# run counts it (figure grub_power_cycles). GRUB must still choose SLOT after that.
GRUB_POWER_CYCLES=0
grub_wait() {
  vm_wait_serial box "Welcome to GRUB" 60 "$2" || return 1
  vm_wait_serial box "booting slot $1 " 15 "$2" && return 0
  tail -n "+$2" "$W/box.serial" | tr -d '\r' | grep -aq "booting slot" && return 1
  echo "image test: no word from GRUB after its banner: power cycle" >&2
  GRUB_POWER_CYCLES=$((GRUB_POWER_CYCLES + 1))
  vm_stop box
  vm_start box "$W/box.img" "$HPORT:8935"
  vm_wait_serial box "booting slot $1 " 60 "$2"
}
# boot_wait SLOT FROM_LINE: GRUB chose SLOT (after line FROM_LINE of the console) and the agent of that boot
# got READY; BOOT_LINE is where that boot starts.
boot_wait() {
  grub_wait "$1" "$2" || fail "GRUB did not boot slot $1"
  local n
  n=$(tail -n "+$2" "$W/box.serial" | tr -d '\r' | grep -an "booting slot $1 " | tail -1 | cut -d: -f1)
  BOOT_LINE=$(( $2 + n - 1 ))
  vm_wait_serial box "edge-agent ready" 120 "$BOOT_LINE" || fail "the agent on slot $1 did not get READY"
}
# rollout_image FILE VERSION: starts an image rollout of bundle FILE to box-1 on the console; prints its id.
rollout_image() {
  local sha
  sha=$(sha256sum "$W/www/$1" | cut -d' ' -f1)
  "$FLEET" --json rollout start --select id=box-1 --canary 1 --soak 5 --report-timeout $((900 * TIMEOUT_SCALE)) \
    --image "url=http://10.0.2.2:$BPORT/$1" "sha256=$sha" "version=$2" | jq -er .id
}
# wait_rollout ID PHASE SECS: until the rollout reaches PHASE; its last state is in $W/rollout.json.
wait_rollout() {
  local secs=$(( $3 * TIMEOUT_SCALE )) t=0
  while [ "$t" -lt "$secs" ]; do
    "$FLEET" --json rollout status "$1" >"$W/rollout.json" 2>/dev/null \
      && jq -e --arg p "$2" '.phase == $p' "$W/rollout.json" >/dev/null && return 0
    sleep 2; t=$((t + 2))
  done
  echo "rollout $1: $(jq -c '{phase, note, targets}' "$W/rollout.json" 2>/dev/null)" >&2
  return 1
}
# wait_answer ID: until the rollout's box has answered its update command (download and install done, as a
# plain `update` command waits for); the answer is in $W/rollout.json.
wait_answer() {
  local secs=$(( 600 * TIMEOUT_SCALE )) t=0
  while [ "$t" -lt "$secs" ]; do
    "$FLEET" --json rollout status "$1" >"$W/rollout.json" 2>/dev/null \
      && jq -e '.targets[0].answer != null' "$W/rollout.json" >/dev/null && return 0
    sleep 2; t=$((t + 2))
  done
  echo "rollout $1: $(jq -c '{phase, note, targets}' "$W/rollout.json" 2>/dev/null)" >&2
  return 1
}
update_cmd() { # id url-file version [sha256]
  local sha=${4:-$(sha256sum "$W/www/$2" | cut -d' ' -f1)}
  "$FLEET" --json cmd box-1 update --id "$1" --timeout $((600 * TIMEOUT_SCALE)) \
    url="http://10.0.2.2:$BPORT/$2" sha256="$sha" version="$3" || true
}

# === boot 1 ===
step "boot 1: slot A, version $V1"
vm_start box "$W/box.img" "$HPORT:8935"
t_boot=$(date +%s)
boot_wait A 1
figure "boot_to_ready_s=$(( $(date +%s) - t_boot )) (power on to edge-agent READY, $ACCEL)"
vm_wait_serial box "imported the provisioning bundle" 10 || fail "the provisioning bundle was not imported"
curl -fsS --retry 10 --retry-delay 2 --retry-all-errors "http://127.0.0.1:$HPORT/healthz" >"$W/healthz.json" \
  || fail "/healthz not reachable from the host"
jq -e --arg v "$V1" '.status == "ok" and .image.slot == "A" and .image.version == $v' "$W/healthz.json" >/dev/null \
  || fail "healthz: $(cat "$W/healthz.json")"

step "ingest: a segment from the host, its HLS back"
ffmpeg -loglevel error -f lavfi -i testsrc=size=320x180:rate=25 -f lavfi -i sine=frequency=440 -t 2 \
  -c:v libx264 -g 50 -pix_fmt yuv420p -c:a aac -f mpegts "$W/seg0.ts"
code=$(curl -sS -o "$W/put.json" -w '%{http_code}' --max-time $((120 * TIMEOUT_SCALE)) -T "$W/seg0.ts" \
  "http://127.0.0.1:$HPORT/live/cam1/0.ts")
[ "$code" = 200 ] || fail "PUT segment: HTTP $code $(cat "$W/put.json")"
curl -fsS "http://127.0.0.1:$HPORT/hls/cam1/master.m3u8" >"$W/master.m3u8" || fail "no master playlist"
rendition=$(grep -v '^#' "$W/master.m3u8" | head -1)
curl -fsS "http://127.0.0.1:$HPORT/hls/cam1/$rendition" >"$W/media.m3u8" || fail "no media playlist $rendition"
seg=$(grep -v '^#' "$W/media.m3u8" | head -1)
curl -fsS "http://127.0.0.1:$HPORT/hls/cam1/$(dirname "$rendition")/$seg" -o "$W/out.ts" || fail "no segment $seg"
codecs=$(ffprobe -v error -show_entries stream=codec_name -of csv=p=0 "$W/out.ts")
[[ $codecs == *h264* ]] || fail "the output segment has no H.264 ($codecs)"

step "fleet: box-1 online over mutual TLS, reporting slot A and $V1; health gate passed"
wait_fleet '.status.state == "online" and .telemetry.image_slot == "A"' 60 \
  || fail "box-1 not online with its slot"
"$FLEET" --json config set box-1 --set telemetry_interval_s=2 >/dev/null || fail "config set"
wait_fleet ".telemetry.image_version == \"$V1\"" 30 || fail "box-1 does not report $V1"
vm_wait_serial box "health gate: slot A is good" 120 || fail "the health gate did not pass on slot A"

step "refused: a wrong SHA-256, a bundle signed by another key, a bundle with one flipped byte"
r=$(update_cmd bad-sha "$(basename "$BUNDLE_SMALL")" "$V2" "$(printf '0%.0s' $(seq 64))")
echo "$r" | jq -e '(.ok | not) and (.error | test("SHA-256"))' >/dev/null || fail "wrong sha accepted: $r"
r=$(update_cmd other-key "$(basename "$BUNDLE_OTHER_KEY")" "$V2")
echo "$r" | jq -e '(.ok | not) and (.error | test("signature|verif|keyring"; "i"))' >/dev/null \
  || fail "bundle of another signer: $r"
r=$(update_cmd flipped flipped.raucb "$V2")
echo "$r" | jq -e '.ok | not' >/dev/null || fail "bundle with a flipped byte installed: $r"
echo "flipped byte: $(echo "$r" | jq -r .error)" >&2
wait_fleet '.telemetry.image_slot == "A" and .telemetry.update.state == "failed"' 30 \
  || fail "after the refusals"

step "operator console: edge-fleet serve on the operator certificate"
CPORT=$(free_port)
export EDGE_FLEET_URL=http://127.0.0.1:$CPORT EDGE_FLEET_USER=ops EDGE_FLEET_PASSWORD="image test password"
echo "$EDGE_FLEET_PASSWORD" | "$FLEET" passwd --file "$W/passwords" ops >/dev/null
"$FLEET" serve --listen "127.0.0.1:$CPORT" --passwords "$W/passwords" --state-dir "$W/console" \
  >"$W/console.log" 2>&1 &
pids+=($!)
for _ in $(seq 30); do
  curl -fsS -u "ops:$EDGE_FLEET_PASSWORD" "$EDGE_FLEET_URL/api/devices" 2>/dev/null \
    | jq -e '.[] | select(.device == "box-1" and .online and .image_version != null)' >/dev/null && break
  sleep 1
done

step "update to $V2: an image rollout from the console"
t_up=$(date +%s)
rid=$(rollout_image "$(basename "$BUNDLE_V2")" "$V2") || fail "rollout of $V2: $(tail -5 "$W/console.log")"
wait_answer "$rid" || fail "no answer to the rollout's update command"
jq -e '.targets[0].answer.slot == "B"' "$W/rollout.json" >/dev/null || fail "update answer: $(cat "$W/rollout.json")"
step "boot 2: slot B, version $V2"
boot_wait B 1
vm_wait_serial box "health gate: slot B is good" 120 "$BOOT_LINE" || fail "the health gate did not pass on slot B"
wait_fleet ".telemetry.image_slot == \"B\" and .telemetry.image_version == \"$V2\" and .telemetry.update.state == \"succeeded\"" 60 \
  || fail "box-1 does not report the update"
wait_rollout "$rid" completed 60 || fail "the rollout of $V2 did not complete"
jq -e '.targets[0].answer.slot == "B"' "$W/rollout.json" >/dev/null || fail "update answer: $(cat "$W/rollout.json")"
echo "update: $(jq -c .targets[0].answer "$W/rollout.json")" >&2
figure "$(jq -r '.targets[0].answer | "update_bytes=\(.bytes) download_s=\(.download_s) install_s=\(.install_s)"' "$W/rollout.json")"
figure "update_command_to_kept_s=$(( $(date +%s) - t_up )) (download, install, drain, reboot, health gate)"

# === boots 3-5: an update whose agent fails the gate ===
step "a rollout of a build whose agent never gets READY"
t_fault=$(date +%s)
from=$(( $(serial_lines box) + 1 ))
rid=$(rollout_image "$(basename "$BUNDLE_FAULT")" "$V2-fault") || fail "rollout of the faulty build"
wait_answer "$rid" || fail "no answer to the faulty build's update command"
jq -e '.targets[0].answer.slot == "A"' "$W/rollout.json" >/dev/null || fail "faulty update answer: $(cat "$W/rollout.json")"
step "boot 3: slot A fails its health gate"
grub_wait A "$from" || fail "GRUB did not try slot A"
vm_wait_serial box "health gate: rolling back to slot B" 300 "$from" || fail "the gate did not roll back"
step "boot 4: back on slot B by itself"
from2=$(( $(serial_lines box) + 1 ))
boot_wait B "$from2"
wait_fleet '.telemetry.image_slot == "B" and .telemetry.update.state == "rolled_back"' 90 \
  || fail "box-1 does not report the rollback"
echo "rollback: $(fleet_show | jq -c .telemetry.update)" >&2
figure "update_command_to_rolled_back_s=$(( $(date +%s) - t_fault ))"
wait_rollout "$rid" halted 60 || fail "the rollout of the faulty build did not halt"
jq -e '.targets[0].answer.slot == "A" and .targets[0].state.state == "failed"
  and (.targets[0].state.reason | test("rolled back"))' "$W/rollout.json" >/dev/null \
  || fail "the halted rollout: $(cat "$W/rollout.json")"
echo "halted rollout: $(jq -c '{note, reason: .targets[0].state.reason}' "$W/rollout.json")" >&2

# === a power cut while the inactive slot is written; the bundle comes from the site's swarm ===
step "power cut while slot A is being written (the bundle fetched over PPSPP from a seeder on the host)"
"$AGENT" swarm seed "$BUNDLE_V2" --hash sha256 --chunk-size 8192 --bind 127.0.0.1:0 \
  >"$W/seeder.out" 2>"$W/seeder.err" &
seeder=$!
pids+=("$seeder")
for _ in $(seq 600); do grep -q "seeding" "$W/seeder.err" && break; sleep 0.2; done
root=$(head -1 "$W/seeder.out")
sport=$(sed -n 's/.* on 127\.0\.0\.1:\([0-9]*\)$/\1/p' "$W/seeder.err")
[ -n "$root" ] && [ -n "$sport" ] || fail "the bundle's seeder did not start: $(cat "$W/seeder.err")"
from=$(( $(serial_lines box) + 1 ))
timeout $((600 * TIMEOUT_SCALE)) "$FLEET" --json cmd box-1 update --id cut --timeout $((600 * TIMEOUT_SCALE)) \
  swarm="$root" peers="10.0.2.2:$sport" sha256="$(sha256sum "$BUNDLE_V2" | cut -d' ' -f1)" \
  version="$V2" >/dev/null 2>&1 &
cutter=$!
vm_wait_serial box "rauc.*writing data to device .*rootfs-a" 300 "$from" || fail "the install did not start"
tail -n "+$from" "$W/box.serial" | tr -d '\r' | grep -aq "update bundle fetched.*swarm" \
  || fail "the box did not say it fetched the bundle from the swarm"
kill -TERM "$seeder"
for _ in $(seq 50); do [ "$(wc -l <"$W/seeder.out")" -ge 2 ] && break; sleep 0.2; done
sent=$(sed -n 2p "$W/seeder.out" | jq -r .data_bytes_up)
[ "${sent:-0}" -ge "$(stat -c %s "$BUNDLE_V2")" ] || fail "the seeder sent ${sent:-nothing} bytes of the bundle"
took=$( (tail -n "+$from" "$W/box.serial" | tr -d '\r' | grep -a "update bundle fetched" \
  | grep -ao 'download_s=[0-9.]*' | tail -1) || true)
figure "swarm_fetch: the box took the bundle from the host's seeder over PPSPP (${sent} content bytes sent, ${took:-download_s=?})"
sleep 3
vm_stop box
kill "$cutter" 2>/dev/null || true
wait "$cutter" 2>/dev/null || true
step "boot 5: the box boots the slot it was on"
from=$(( $(serial_lines box) + 1 ))
vm_start box "$W/box.img" "$HPORT:8935"
boot_wait B "$from"
wait_fleet ".telemetry.image_slot == \"B\" and .telemetry.image_version == \"$V2\"" 60 \
  || fail "box-1 after the power cut"
sleep 8
vm_stop box

step "data partition: the provisioned files, byte for byte"
start=$(sfdisk -J "$W/box.img" | jq '.partitiontable.partitions[] | select(.name == "data") | .start')
dd if="$W/box.img" of="$W/data.ext4" bs=512 skip="$start" status=none
# The box was powered off, not shut down: replay the journal (on this copy) as the next mount would.
e2fsck -fy "$W/data.ext4" >"$W/e2fsck.log" 2>&1 || [ $? -le 1 ] || fail "data partition: $(cat "$W/e2fsck.log")"
debugfs -R "rdump /edge-agent $W" "$W/data.ext4" >/dev/null 2>&1
for f in config.toml fleet/ca.pem fleet/device.pem fleet/device.key keystore.json; do
  cmp "$W/prov/provision/$f" "$W/edge-agent/$f" >&2 || fail "data partition: $f differs from what was provisioned"
done
ls "$W/edge-agent/update/gate-A.json" "$W/edge-agent/update/gate-B.json" >/dev/null || fail "no gate verdicts kept"
figure "grub_power_cycles=$GRUB_POWER_CYCLES (GRUB silent after its banner, box powered off and on)"
step "ok"
