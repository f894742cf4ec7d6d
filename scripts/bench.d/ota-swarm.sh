#!/usr/bin/env bash
# The site's uplink during an update (see BENCHMARKS.md, "image: a site's uplink, 10 boxes fetching one
# bundle over PPSPP"). One origin seeds the bundle (`edge-agent swarm seed`, standing for the copy across the
# site's uplink); OTA_BOXES boxes fetch it at once, as one wave of a rollout does, each named only the
# origin, with the settings of the `update` command's swarm (SHA-256 Merkle tree, 8 KiB chunks) and the
# shared fetch code the daemon uses (`edge-agent swarm fetch`, each a process of its own on real UDP over
# loopback). A box keeps serving after its fetch, as a box serves its bundle until it reboots into it.
# Baseline, in the same run: the bytes each box fetching it over HTTPS takes across the uplink (N copies).
# Figure: the origin's content bytes sent / the bundle's size, against N.
#   OTA_BUNDLE   the file to fetch (default: out/image/edge-*.raucb when there is one, else OTA_MB of random)
#   OTA_MB (64) OTA_BOXES (10)
set -euo pipefail
cd "$(dirname "$0")/../.."
N=${OTA_BOXES:-10}
MB=${OTA_MB:-64}
cargo build --release --locked -p edge-agent >&2
BIN=${CARGO_TARGET_DIR:-$PWD/target}/release/edge-agent
W=$(mktemp -d)
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$W"' EXIT
F=${OTA_BUNDLE:-$(ls -t out/image/edge-*.raucb 2>/dev/null | head -1 || true)}
if [ -z "$F" ]; then
  F=$W/bundle.bin
  openssl rand -out "$F" $((MB * 1000000))
fi
size=$(stat -c %s "$F")
echo "# ota-swarm bench $(date -u +%FT%TZ) load: $(cut -d' ' -f1-3 /proc/loadavg); $N boxes, $(basename "$F") ($size bytes)"
S=(--hash sha256 --chunk-size 8192)
"$BIN" swarm seed "$F" "${S[@]}" --bind 127.0.0.1:0 >"$W/origin.out" 2>"$W/origin.err" &
origin=$!
pids+=("$origin")
for _ in $(seq 600); do grep -q "seeding" "$W/origin.err" && break; sleep 0.1; done
id=$(head -1 "$W/origin.out")
addr=$(sed -n 's/.* on \(127\.0\.0\.1:[0-9]*\)$/\1/p' "$W/origin.err")
[ -n "$id" ] && [ -n "$addr" ] || { cat "$W/origin.err" >&2; echo "ota-swarm: the origin did not start" >&2; exit 1; }
t0=$(date +%s.%N)
for i in $(seq "$N"); do
  ( s=$(date +%s.%N)
    "$BIN" swarm fetch "$id" --peer "$addr" -o "$W/box$i.bin" --linger 600 "${S[@]}" --bind 127.0.0.1:0 \
      >"$W/box$i.out" 2>"$W/box$i.err" &
    p=$!
    echo "$p" >"$W/box$i.pid"
    until grep -q "^done:" "$W/box$i.err" 2>/dev/null; do
      kill -0 "$p" 2>/dev/null || { echo "box $i: $(tail -c 300 "$W/box$i.err")" >&2; exit 1; }
      sleep 0.2
    done
    echo "$(date +%s.%N) $s" >"$W/box$i.time"
    wait "$p" ) &
  pids+=($!)
done
for i in $(seq "$N"); do
  for _ in $(seq 3000); do [ -f "$W/box$i.time" ] && break; sleep 0.2; done
  [ -f "$W/box$i.time" ] || { echo "ota-swarm: box $i did not finish" >&2; exit 1; }
done
t1=$(date +%s.%N)
# Everyone stops serving now: the figures are what it took for all N to have the bundle.
for i in $(seq "$N"); do kill -TERM "$(cat "$W/box$i.pid")" 2>/dev/null || true; done
kill -TERM "$origin"
for _ in $(seq 100); do [ -s "$W/origin.out" ] && [ "$(wc -l <"$W/origin.out")" -ge 2 ] && break; sleep 0.1; done
for i in $(seq "$N"); do
  for _ in $(seq 100); do [ -s "$W/box$i.out" ] && break; sleep 0.1; done
  cmp -s "$F" "$W/box$i.bin" || { echo "ota-swarm: box $i's copy differs" >&2; exit 1; }
done
up=$(sed -n 2p "$W/origin.out" | jq .data_bytes_up)
peers_up=$(cat "$W"/box*.out | jq -s 'map(.data_bytes_up) | add')
slowest=$(cat "$W"/box*.time | awk '{d = $1 - $2; if (d > m) m = d} END {printf "%.1f", m}')
awk -v up="$up" -v size="$size" -v n="$N" -v peers="$peers_up" -v t0="$t0" -v t1="$t1" -v slow="$slowest" 'BEGIN {
  wall = t1 - t0
  printf "ota_swarm: boxes=%d bundle_bytes=%.0f origin_bytes=%.0f (%.2fx the bundle; over HTTPS %dx: %.2f of that)\n",
    n, size, up, up / size, n, up / (size * n)
  printf "ota_swarm: uplink_bytes_saved=%.0f (%.0f %%) boxes_to_each_other_bytes=%.0f all_done_s=%.1f slowest_box_s=%s\n",
    size * n - up, 100 * (1 - up / (size * n)), peers, wall, slow
}'
