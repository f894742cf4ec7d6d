#!/usr/bin/env bash
# Real-browser playback of the product's HLS: edge-agent transcodes the built-in test source to a short ladder,
# and tests/browser/play.mjs (hls.js in Debian's headless chromium) serves it on 127.0.0.1, must list every
# rendition of master.m3u8 as a level, and must advance the playback clock by >= 2 s with no fatal hls.js error.
# Prints play.mjs's JSON report.  By hand: see tests/README.md ("Browser playback check").
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
