#!/usr/bin/env bash
# The box's calibrated capacity against what it really sustains (see BENCHMARKS.md, section "capacity"):
# `edge-agent hw --calibrate --again` (release) measures how many streams of the default ladder this box carries
# in real time (N); then the real daemon gets N, then N+1 live streams at once, each pushing a 2 s 1080p30
# segment every 2 s through the ingest (the PUT answers once the segment is transcoded), for CAPACITY_SECONDS.
# A stream keeps up when every segment is answered before the next one is due: figures per run are the
# segments' latency p50/p95/max against the segment duration and how far the slowest stream fell behind.
# Env: CAPACITY_SECONDS (30), CAPACITY_MODE (continuous | restart).
set -euo pipefail
cd "$(dirname "$0")/../.."
SECS=${CAPACITY_SECONDS:-30}
MODE=${CAPACITY_MODE:-continuous}
cargo build --release --locked -p edge-agent >&2
BIN=${CARGO_TARGET_DIR:-$PWD/target}/release/edge-agent
W=$(mktemp -d)
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$W"' EXIT
# shellcheck source=scripts/lib/free-port.sh
. scripts/lib/free-port.sh
PORT=$(free_port)
config() { # max_sessions
  cat >"$W/config.toml" <<EOF
[agent]
data_dir = "$W/data"
[media]
max_sessions = $1
segment_mode = "$MODE"
[ingest]
listen = "127.0.0.1:$PORT"
EOF
}
echo "# capacity bench $(date -u +%FT%TZ) load: $(cut -d' ' -f1-3 /proc/loadavg), $MODE mode, ${SECS} s per run"
config 0
"$BIN" hw --calibrate --again --json --config "$W/config.toml" >"$W/hw.json"
N=$(jq '.calibration.calibration.streams' "$W/hw.json")
jq -c '{encoder: .selection.encoder, ladder: .calibration.key.ladder, calibrated_streams: .calibration.calibration.streams,
  trials: [.calibration.calibration.trials[] | {streams, slowest_realtime: (.slowest_realtime * 100 | round / 100)}]}' "$W/hw.json"

# the same 1080p30 input the calibration used, as 2 s segments
ffmpeg -nostdin -loglevel error -f lavfi -i "testsrc2=s=1920x1080:r=30:d=$SECS" -f lavfi -i "sine=f=440:d=$SECS" \
  -c:v libx264 -preset veryfast -b:v 6M -g 60 -keyint_min 60 -sc_threshold 0 -pix_fmt yuv420p -c:a aac \
  -f segment -segment_time 2 -segment_format mpegts "$W/seg%03d.ts"
SEGS=$(find "$W" -maxdepth 1 -name 'seg*.ts' | wc -l)

calc() { awk "BEGIN { printf \"%.3f\", $* }"; }
push() { # stream: every 2 s one segment, each PUT's seconds and lateness into $W/lat-STREAM
  local s=$1 i start due now t0 t1
  start=$(date +%s.%N)
  for ((i = 0; i < SEGS; i++)); do
    due=$(calc "$start + 2 * $i")
    now=$(date +%s.%N)
    if awk "BEGIN { exit !($due > $now) }"; then sleep "$(calc "$due - $now")"; fi
    t0=$(date +%s.%N)
    curl -fsS -o /dev/null -T "$(printf '%s/seg%03d.ts' "$W" "$i")" "http://127.0.0.1:$PORT/live/$s/$i.ts" \
      || echo "PUT $s/$i failed" >&2
    t1=$(date +%s.%N)
    echo "$(calc "$t1 - $t0") $(calc "$t0 - $due")" >>"$W/lat-$s"
  done
}
run() { # streams
  local k=$1 s
  config $((k + 1))
  rm -f "$W"/lat-*
  "$BIN" run --config "$W/config.toml" >"$W/daemon-$k.log" 2>&1 &
  local d=$!
  pids+=("$d")
  for _ in $(seq 100); do curl -fsS "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1 && break; sleep 0.1; done
  local jobs=()
  for ((s = 0; s < k; s++)); do push "cam$k-$s" & jobs+=($!); done
  wait "${jobs[@]}"
  kill "$d"; wait "$d" 2>/dev/null || true
  cat "$W"/lat-* | sort -n | awk -v k="$k" -v n="$N" '
    { lat[NR] = $1; if ($2 > late) late = $2 }
    END { printf "{\"streams\":%d,\"calibrated\":%d,\"segments\":%d,\"latency_s_p50\":%.2f,\"latency_s_p95\":%.2f,\"latency_s_max\":%.2f,\"behind_s_max\":%.2f,\"kept_up\":%s}\n",
      k, n, NR, lat[int(NR * 0.5) + 1], lat[int(NR * 0.95) + 1], lat[NR], late, (late < 0.5 ? "true" : "false") }'
}
run "$N"
run $((N + 1))
