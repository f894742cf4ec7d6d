#!/usr/bin/env bash
# The live network end to end (see BENCHMARKS.md, section "live network"): `edge-agent demo` (release) runs the
# chain, two transcoder boxes, the verifier, a broadcaster and viewers on this machine, twice in one run: on a
# clean loopback (the baseline) and with every peer dropping LIVE_BENCH_LOSS of the swarm datagrams it sends and
# holding as many back for up to 40 ms. Figures: glass-to-glass delay (the broadcaster's cut of a segment to a
# viewer's playlist listing it; target <= segment + 1 s), what the viewers relayed for each other, what the box
# uploaded to them against one copy of the stream (origin upload; a relay sends one copy per viewer), wall time;
# and the lossy run against the clean one as ratios.
# Env: LIVE_BENCH_SECONDS (30), LIVE_BENCH_VIEWERS (3), LIVE_BENCH_LOSS (0.1).
set -euo pipefail
cd "$(dirname "$0")/../.."
SECS=${LIVE_BENCH_SECONDS:-30}
VIEWERS=${LIVE_BENCH_VIEWERS:-3}
LOSS=${LIVE_BENCH_LOSS:-0.1}
cargo build --release --locked -p edge-agent >&2
BIN=${CARGO_TARGET_DIR:-$PWD/target}/release/edge-agent
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
echo "# live network bench $(date -u +%FT%TZ) load: $(cut -d' ' -f1-3 /proc/loadavg), ${SECS} s, ${VIEWERS} viewers"
run() { # name, extra demo flags...
  local name=$1; shift
  "$BIN" demo --dir "$W/$name" --duration "$SECS" --viewers "$VIEWERS" --summary "$W/$name.json" "$@" \
    >"$W/$name.out" 2>&1 || { tail -30 "$W/$name.out" >&2; echo "live bench: the $name run failed" >&2; exit 1; }
  jq -c --arg n "$name" '{run: $n, ok, segments, wall_s: (.wall_s | floor),
      g2g_p50_ms: ([.viewers[].delay_ms_p50] | sort | .[length / 2 | floor]),
      g2g_max_ms: ([.viewers[].delay_ms_max] | max),
      viewer_relay_ratio: (.viewer_relay_ratio * 100 | round / 100),
      origin_upload: (.origin_upload_ratio * 100 | round / 100)}' "$W/$name.json"
}
run clean
run lossy --loss "$LOSS" --reorder "$LOSS"
jq -n -c --slurpfile a "$W/clean.json" --slurpfile b "$W/lossy.json" '
  def p50: [.viewers[].delay_ms_p50] | sort | .[length / 2 | floor];
  {lossy_vs_clean: {g2g_p50: (($b[0] | p50) / ($a[0] | p50) * 100 | round / 100),
                    wall: (($b[0].wall_s / $a[0].wall_s) * 100 | round / 100)}}'
