#!/usr/bin/env bash
# Real-browser playback of the product's HLS: edge-agent transcodes the built-in test source to a short ladder,
# and tests/browser/play.mjs (hls.js in Debian's headless chromium) serves it on 127.0.0.1, must list every
# rendition of master.m3u8 as a level, and must advance the playback clock by >= 2 s with no fatal hls.js error.
# Then every rendition of every real-world corpus input (agent/media/tests/realworld.rs) must play to within a
# second of its end with no decoding error.  By hand: see tests/README.md ("Browser playback check").
set -euo pipefail
cd "$(dirname "$0")/../.."
[ -f tests/browser/node_modules/hls.js/dist/hls.min.js ] && [ -x /usr/bin/chromium ] \
  || { echo "browser check toolchain missing: run ./x setup" >&2; exit 1; }
cargo build -q --locked -p edge-agent
BIN=${CARGO_TARGET_DIR:-$PWD/target}/debug/edge-agent
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT

"$BIN" transcode --test-source --duration 6 --out "$W/hls" >"$W/transcode.log" 2>&1 \
  || { cat "$W/transcode.log" >&2; echo "45-browser: transcode failed" >&2; exit 1; }
levels=$(grep -c '^#EXT-X-STREAM-INF:' "$W/hls/master.m3u8" || true)
[ "$levels" -ge 1 ] || { cat "$W/hls/master.m3u8" >&2; echo "45-browser: no rendition in master.m3u8" >&2; exit 1; }
echo "45-browser: $(tail -2 "$W/transcode.log" | head -1)"
echo "45-browser: playing master.m3u8 ($levels renditions) in headless chromium with hls.js"
node tests/browser/play.mjs --serve "$W/hls" master.m3u8 --expect-levels "$levels" --min-seconds 2 --timeout 60

# the real-world corpus: each rendition's playlist, played through to its last second
RW="$W/realworld"
REALWORLD_KEEP="$RW" RUST_TEST_THREADS=1 cargo test -q --locked -p media --test realworld real_world \
  >"$W/realworld.log" 2>&1 || { tail -40 "$W/realworld.log" >&2; echo "45-browser: corpus transcode failed" >&2; exit 1; }
played=0
for case in "$RW"/*/; do
  name=$(basename "$case")
  for pl in "$case"*/index.m3u8; do
    rel=${pl#"$case"}
    secs=$(awk -F'[:,]' '/^#EXTINF/ { s += $2 } END { printf "%.2f", s }' "$pl")
    min=$(awk -v s="$secs" 'BEGIN { m = s - 1.0; if (m < 0.5) m = 0.5; printf "%.2f", m }')
    if ! node tests/browser/play.mjs --serve "$case" "$rel" --min-seconds "$min" --timeout 60 >"$W/play.json"; then
      cat "$W/play.json" >&2
      echo "45-browser: $name/$rel did not play to its end" >&2
      exit 1
    fi
    # a non-fatal media error is a decoding error here, unless it is about the timeline (a stream joined
    # mid-GOP starts its video after its audio: hls.js seeks over that hole)
    node -e 'const ok = ["bufferSeekOverHole", "bufferStalledError", "bufferNudgeOnStall"]; const r = JSON.parse(require("fs").readFileSync(process.argv[1])); const m = (r.non_fatal_samples || []).filter((e) => e.type === "mediaError" && !ok.includes(e.details)); if (m.length) { console.error(JSON.stringify(m)); process.exit(1); }' "$W/play.json" \
      || { echo "45-browser: $name/$rel: media errors while playing" >&2; exit 1; }
    played=$((played + 1))
  done
done
[ "$played" -ge 20 ] || { echo "45-browser: only $played corpus renditions played" >&2; exit 1; }
echo "45-browser: $played renditions of the real-world corpus played to their end in headless chromium"
