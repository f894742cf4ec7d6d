#!/usr/bin/env bash
# The live network end to end, as `./x run` starts it: `edge-agent demo` runs anvil with the contracts, two
# transcoder daemons (one elected), the verifier, a broadcaster streaming 20 s of the test source over a PPSPP
# live swarm, and three viewers fetching the rendition swarms from the box and from each other. The demo's exit
# status is its own verdict (every segment transcoded, claimed, verified where challenged, fees distributed,
# no slash, every viewer's HLS complete and byte-identical to the box's). Then hls.js in headless Chromium
# plays a viewer's HLS and must list both renditions. Last, the whole network again on a lossy path.
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo build -q --locked -p edge-agent
BIN=${CARGO_TARGET_DIR:-$PWD/target}/debug/edge-agent
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
if ! "$BIN" demo --dir "$W/demo" --duration 20 --viewers 3 --summary "$W/summary.json" >"$W/demo.out" 2>&1; then
  cat "$W/demo.out" >&2
  for l in "$W"/demo/logs/*.log; do echo "--- $l" >&2; tail -15 "$l" >&2; done
  echo "47-live-network: the demo network failed" >&2
  exit 1
fi
grep -v '^\s' "$W/demo.out" | tail -20
jq -e '.ok and .slashes == null and .claims_slashed == 0 and (.viewers | length == 3) and all(.viewers[]; .complete and .identical)' \
  "$W/summary.json" >/dev/null || { cat "$W/summary.json" >&2; exit 1; }
echo "47-live-network: playing viewer-1's HLS with hls.js in headless chromium"
node tests/browser/play.mjs --serve "$W/demo/viewer-1/hls" master.m3u8 --expect-levels 2 --min-seconds 2 --timeout 60 >"$W/play.json" \
  || { cat "$W/play.json" >&2; exit 1; }
jq -c '{ok, levels: [.levels[] | {width, height, bitrate}], played_seconds}' "$W/play.json"

# The same network on a lossy path: every peer (broadcaster, boxes, viewers) drops 10 % of the swarm
# datagrams it sends and holds another 10 % back for up to 40 ms, and one more viewer corrupts every chunk
# it uploads. Nothing may be missing at the end, and the honest viewers must have refused its chunks.
echo "47-live-network: again with 10 % loss and 10 % reordering between all peers, and a corrupting viewer"
if ! "$BIN" demo --dir "$W/lossy" --duration 20 --viewers 3 --loss 0.1 --reorder 0.1 --bad-viewers 1 \
    --summary "$W/lossy.json" >"$W/lossy.out" 2>&1; then
  cat "$W/lossy.out" >&2
  for l in "$W"/lossy/logs/*.log; do echo "--- $l" >&2; tail -15 "$l" >&2; done
  echo "47-live-network: the demo network failed on a lossy path" >&2
  exit 1
fi
jq -e '.ok and .claims_slashed == 0 and .impairment != null and .bad_chunks_refused > 0 and (.viewers | length == 3) and all(.viewers[]; .complete and .identical)' \
  "$W/lossy.json" >/dev/null || { cat "$W/lossy.json" >&2; exit 1; }
jq -c '{impairment, transcoded, verified, bad_chunks_refused, viewers: [.viewers[] | {name, delay_ms_p50, delay_ms_max, bytes_up}]}' "$W/lossy.json"
