#!/usr/bin/env bash
# Transcoding: a 10 s (BENCH_SECONDS) 1080p30 H.264 input to the ladder 720p/3000k, 480p/1500k, 360p/800k (GOP 60, x264
# veryfast, CBR with a 600 ms VBV) by, interleaved in each round:
#   ffmpeg      one ffmpeg process: decode once, split=3, scale (swscale default bicubic), libx264 veryfast  [baseline]
#   gst-raw     the straightforward gst-launch-1.0 pipeline: decode, tee, videoscale per branch, x264enc veryfast
#   gst-tuned   the tuned gst-launch-1.0 layout (see BENCHMARKS.md)
#   agent       ./target/release/edge-agent transcode (skipped with a message until it is built)
# Reports wall time, realtime factor, CPU seconds, peak RSS (/usr/bin/time -v), each rendition's video bitrate
# and PSNR (Y and YUV average) against the source scaled down with ffmpeg lanczos, and the agent's per-segment
# latency (2 s segments) from its JSON summary.
#
#   ./x bench transcode            or   ROUNDS=5 bash scripts/bench.d/transcode.sh
# Env: ROUNDS (default 3), BENCH_SECONDS (the input's length, default 10), BENCH_OUT (default out/bench/transcode), AGENT (path to edge-agent),
#      ONLY="ffmpeg gst-tuned" (subset of runners), REPORT_ONLY=1 (redo the report from the last run's files).
set -euo pipefail
ROOT=${ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
OUT=${BENCH_OUT:-$ROOT/out/bench/transcode}
export ROOT OUT
ROUNDS=${ROUNDS:-3}
AGENT=${AGENT:-$ROOT/target/release/edge-agent}
export AGENT
ONLY=${ONLY:-ffmpeg gst-raw gst-tuned agent}
DURATION=${BENCH_SECONDS:-10}
mkdir -p "$OUT"
for tool in ffmpeg ffprobe gst-launch-1.0 jq awk; do
  command -v "$tool" >/dev/null || { echo "transcode bench: $tool not found (run ./x setup)" >&2; exit 1; }
done
[ -x /usr/bin/time ] || { echo "transcode bench: /usr/bin/time not found (apt package 'time'; run ./x setup)" >&2; exit 1; }
log() { printf '[transcode] %s\n' "$*" >&2; }

# ---------------------------------------------------------------------------------------------------------------
# The input.  testsrc2 (colour bars, moving gradient line, counters) blended at 35 % with a scrolling film-grain
# texture (uniform noise, blurred, 90 px/s pan) plus 3 % temporal noise: every frame has detail that moves, so
# motion search and the rate control have real work, unlike plain bars.  Encoded once with libx264 fast at
# 10 Mbit/s, ONE x264 thread (with 2 threads x264's output differs run to run; with 1 it is byte-identical
# for a given ffmpeg/x264 build, checked with md5), tagged BT.709 (as real HD sources are; an
# untagged source makes GStreamer guess BT.601 for SD renditions and convert the matrix, see the notes).
SRC_RECIPE='testsrc2=s=1920x1080:r=30:d='$DURATION'[a];color=c=gray:s=2560x1080:r=30:d='$DURATION',noise=alls=80:allf=u,gblur=sigma=1.0,crop=1920:1080:x='"'"'mod(t*90\,640)'"'"':y=0[b];[a][b]blend=all_mode=normal:all_opacity=0.35,noise=alls=3:allf=t+u,format=yuv420p[v]'
SRC_ENC='-c:v libx264 -preset fast -b:v 10M -maxrate 12M -bufsize 20M -g 60 -threads 1 -colorspace bt709 -color_primaries bt709 -color_trc bt709 -color_range tv'
SRC=$OUT/source-1080p30-${DURATION}s.ts
recipe_id() { printf '%s|%s|%s' "$SRC_RECIPE" "$SRC_ENC" "$(ffmpeg -version | head -1)" | sha256sum | cut -c1-16; }
ensure_source() {
if [ ! -s "$SRC" ] || [ "$(cat "$SRC.recipe" 2>/dev/null)" != "$(recipe_id)" ]; then
  log "generating the source ($SRC)"
  # shellcheck disable=SC2086
  ffmpeg -nostdin -hide_banner -loglevel error -y -filter_complex "$SRC_RECIPE" -map '[v]' $SRC_ENC -f mpegts "$SRC.tmp"
  mv "$SRC.tmp" "$SRC"
  recipe_id >"$SRC.recipe"
fi
}

# Ladder: name height width kbps.  x264: veryfast, CBR at the profile bitrate with VBV = 600 ms (x264enc's
# default vbv-buf-capacity; ffmpeg gets the same -maxrate/-bufsize), keyint 60 with scene-cut off so every
# 2 s segment starts with an IDR, High profile, threads auto.
LADDER=("720 1280 3000" "480 854 1500" "360 640 800")

run_ffmpeg() { # DIR
  local d=$1 args=() r h w k
  for r in "${LADDER[@]}"; do
    read -r h w k <<<"$r"
    args+=(-map "[v$h]" -c:v libx264 -preset veryfast -b:v ${k}k -maxrate ${k}k -bufsize $((k * 6 / 10))k
      -g 60 -keyint_min 60 -sc_threshold 0 -f mpegts "$d/$h.ts")
  done
  ffmpeg -nostdin -hide_banner -loglevel error -y -i "$SRC" -filter_complex \
    "[0:v]split=3[a][b][c];[a]scale=1280:720[v720];[b]scale=854:480[v480];[c]scale=640:360[v360]" "${args[@]}"
}

x264() { # KBPS -> x264enc settings identical to ffmpeg's (verified from the x264 SEI of both outputs)
  echo "x264enc speed-preset=veryfast bitrate=$1 key-int-max=60 option-string=scenecut=0${X264_EXTRA:-}"
}
sink() { echo "video/x-h264,profile=high ! h264parse ! mpegtsmux ! filesink location=$1"; }
caps() { echo "video/x-raw,width=$1,height=$2,pixel-aspect-ratio=1/1,colorimetry=bt709"; }
DEC="filesrc location=$SRC ! tsdemux ! h264parse ! avdec_h264"

run_gst_raw() { # DIR: one tee after the decoder, one videoscale (lanczos) per rendition, straight from 1080p
  local d=$1
  # shellcheck disable=SC2046
  gst-launch-1.0 -q $DEC ! tee name=t \
    t. ! queue ! videoscale method=lanczos ! $(caps 1280 720) ! $(x264 3000) ! $(sink "$d/720.ts") \
    t. ! queue ! videoscale method=lanczos ! $(caps 854 480) ! $(x264 1500) ! $(sink "$d/480.ts") \
    t. ! queue ! videoscale method=lanczos ! $(caps 640 360) ! $(x264 800) ! $(sink "$d/360.ts") </dev/null
}

# The tuned layout: scale 1080->720 once, fan the 720p frames out to the 720p encoder and to the 480p and 360p
# scalers (cascade: no scaler reads 1080p twice, no 3x step), lanczos (1.5x step) / Catmull-Rom (SD steps) luma
# with a lanczos/cubic chroma resampler instead of the default linear one, one queue per branch so decode, each
# scaler and each encoder run in their own threads, and x264 motion search "dia" instead of veryfast's "hex" for
# 480p/360p (720p keeps "hex": dia cost it 0.08 dB, more than its headroom).  Every other x264 setting as above.
TUNED_SCALER_720=${TUNED_SCALER_720:-videoscale method=lanczos chroma-resampler=lanczos}
TUNED_SCALER_SD=${TUNED_SCALER_SD:-videoscale method=catrom chroma-resampler=cubic}
TUNED_X264_720=${TUNED_X264_720:-}
TUNED_X264_SD=${TUNED_X264_SD:-:me=dia}
run_gst_tuned() { # DIR
  local d=$1
  # shellcheck disable=SC2046
  gst-launch-1.0 -q $DEC ! queue ! $TUNED_SCALER_720 ! $(caps 1280 720) ! tee name=a \
    a. ! queue ! $(X264_EXTRA=$TUNED_X264_720 x264 3000) ! $(sink "$d/720.ts") \
    a. ! queue ! $TUNED_SCALER_SD ! $(caps 854 480) ! queue ! $(X264_EXTRA=$TUNED_X264_SD x264 1500) ! $(sink "$d/480.ts") \
    a. ! queue ! $TUNED_SCALER_SD ! $(caps 640 360) ! queue ! $(X264_EXTRA=$TUNED_X264_SD x264 800) ! $(sink "$d/360.ts") </dev/null
}

agent_ready() {
  [ -x "$AGENT" ] && "$AGENT" transcode --help 2>/dev/null | grep -q -- '--input'
}
run_agent() { # DIR
  local d=$1
  "$AGENT" transcode --input "$SRC" --ladder 1280x720@30:3000,854x480@30:1500,640x360@30:800 --gop 60 \
    --segment-seconds 2 --software --x264-opts "${AGENT_X264_OPTS-me=dia}" --json --out "$d" </dev/null >"$d.jsonl"
}

# Rendition files of a run: DIR/H.ts for the gst/ffmpeg runs, the media playlists of the agent's master.
rendition() { # DIR H -> path ffmpeg can read
  local d=$1 h=$2
  if [ -f "$d/$h.ts" ]; then echo "$d/$h.ts"; return; fi
  awk -v h="$h" '/RESOLUTION=/ { split($0, a, "RESOLUTION="); split(a[2], b, "[x,]"); want = (b[2] == h); next }
    want && !/^#/ && NF { print; exit }' "$d/master.m3u8" | sed "s#^#$d/#"
}

# The measured process: this script re-entered with "__run NAME DIR" (so /usr/bin/time sees one process tree).
if [ "${1:-}" = __run ]; then
  "run_${2//-/_}" "$3"
  exit
fi

measure() { # NAME DIR -> appends "name wall cpu rss" to $OUT/times
  local name=$1 d=$2
  rm -rf "$d"; mkdir -p "$d"
  if ! /usr/bin/time -v -o "$d.time" bash "$0" __run "$name" "$d"; then
    log "$name failed (see above)"; return 1
  fi
  awk -v n="$name" -F': ' '
    /Elapsed \(wall clock\)/ { k = split($2, p, ":"); w = 0; for (i = 1; i <= k; i++) w = w * 60 + p[i] }
    /User time/ { u = $2 } /System time/ { s = $2 } /Maximum resident/ { r = $2 }
    END { printf "%s %.2f %.2f %d\n", n, w, u + s, r }' "$d.time" >>"$OUT/times"
}

quality() { # NAME DIR -> appends "name h kbps psnr_y psnr_avg" to $OUT/quality
  local name=$1 d=$2 r h w k f stats kbps
  for r in "${LADDER[@]}"; do
    read -r h w k <<<"$r"
    f=$(rendition "$d" "$h")
    [ -n "$f" ] && [ -e "$f" ] || { log "$name: no ${h}p rendition in $d"; continue; }
    # Video elementary-stream bitrate: sum of packet sizes over the stream duration (no container overhead).
    kbps=$(ffprobe -v error -select_streams v:0 -show_entries packet=pts_time,size -of default=nw=1 "$f" |
      awk -F= '$1 == "size" { s += $2; n++ } $1 == "pts_time" { t = $2 + 0; if (!m++ || t < lo) lo = t; if (t > hi) hi = t }
        END { d = (hi - lo) * n / (n - 1); printf "%.0f", s * 8 / d / 1000 }')
    stats=$(ffmpeg -nostdin -hide_banner -nostats -i "$f" -i "$SRC" -filter_complex \
      "[1:v]scale=$w:$h:flags=lanczos+accurate_rnd+full_chroma_int[ref];[0:v][ref]psnr" -f null - 2>&1 |
      grep -o 'PSNR y:[0-9.]* .* average:[0-9.]*' | awk '{ sub("y:", "", $2); sub("average:", "", $5); print $2, $5 }')
    echo "$name $h $kbps $stats" >>"$OUT/quality"
  done
}

if [ -z "${REPORT_ONLY:-}" ]; then
ensure_source
: >"$OUT/times"; : >"$OUT/quality"
runners=()
for r in $ONLY; do
  case $r in
    agent) if agent_ready; then runners+=(agent); else
      log "agent: SKIPPED - $AGENT with 'transcode --input' not found; build it with 'cargo build --release -p edge-agent' (or set AGENT=path)"
    fi ;;
    ffmpeg | gst-raw | gst-tuned) runners+=("$r") ;;
    *) echo "unknown runner $r" >&2; exit 2 ;;
  esac
done
load_before=$(cut -d' ' -f1 /proc/loadavg)
log "load average before: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) CPUs; $ROUNDS interleaved rounds of: ${runners[*]}"
for round in $(seq 1 "$ROUNDS"); do
  for r in "${runners[@]}"; do
    log "round $round: $r"
    measure "$r" "$OUT/run-$r" || continue
    [ "$round" -eq 1 ] && quality "$r" "$OUT/run-$r"
    if [ "$r" = agent ] && [ "$round" -eq 1 ]; then
      jq -c '(.summary // .) | select(.latency_ms_p50 != null) | {latency_ms_p50, latency_ms_p95, latency_ms_max, segments_ok, segments_failed}' \
        "$OUT/run-agent.jsonl" >"$OUT/agent-latency.json" || true
    fi
  done
done
fi
load_after=$(cut -d' ' -f1 /proc/loadavg); load_before=${load_before:-?}
rounds_done=$(awk '{ n[$1]++ } END { for (k in n) if (n[k] > m) m = n[k]; print m + 0 }' "$OUT/times")

# ---------------------------------------------------------------------------------------------------------------
# Report: medians over rounds; ratios against ffmpeg (throughput = ffmpeg wall / wall) and the agent against
# the tuned gst-launch pipeline it is meant to run.
report=$OUT/report.md
{
  echo "| $(date -u '+%Y-%m-%d %H:%M UTC'), $rounds_done rounds, $(nproc) CPUs, load avg before/after $load_before/$load_after | wall s (median) | x realtime | CPU s (median) | peak RSS MiB | throughput vs ffmpeg | CPU vs ffmpeg |"
  echo "|---|---|---|---|---|---|---|"
  awk -v D=$DURATION '
    function median(arr, n,   i, j, t) { for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (arr[j] < arr[i]) { t = arr[i]; arr[i] = arr[j]; arr[j] = t }
      return n % 2 ? arr[(n + 1) / 2] : (arr[n / 2] + arr[n / 2 + 1]) / 2 }
    { n[$1]++; W[$1, n[$1]] = $2; C[$1, n[$1]] = $3; if ($4 > R[$1]) R[$1] = $4; if (!seen[$1]++) order[++k] = $1 }
    END {
      for (i = 1; i <= k; i++) { m = order[i]; delete a; delete b
        for (j = 1; j <= n[m]; j++) { a[j] = W[m, j]; b[j] = C[m, j] }
        mw[m] = median(a, n[m]); mc[m] = median(b, n[m]) }
      for (i = 1; i <= k; i++) { m = order[i]
        tr = ("ffmpeg" in mw) ? sprintf("%.2fx", mw["ffmpeg"] / mw[m]) : "-"
        cr = ("ffmpeg" in mc) ? sprintf("%.2fx", mc["ffmpeg"] / mc[m]) : "-"
        printf "| %s | %.2f | %.2f | %.2f | %.0f | %s | %s |\n", m, mw[m], D / mw[m], mc[m], R[m] / 1024, tr, cr }
      if (("agent" in mw) && ("gst-tuned" in mw))
        printf "\nagent overhead over the tuned gst-launch pipeline: wall %+.1f %%, CPU %+.1f %%\n", (mw["agent"] / mw["gst-tuned"] - 1) * 100, (mc["agent"] / mc["gst-tuned"] - 1) * 100
    }' "$OUT/times"
  echo
  echo "| rendition quality (round 1) | video kbit/s | PSNR Y dB | PSNR YUV dB | ΔY vs ffmpeg | ΔYUV vs ffmpeg |"
  echo "|---|---|---|---|---|---|"
  awk '{ k = $2; if ($1 == "ffmpeg") { fy[k] = $4; fa[k] = $5 } rows[++n] = $0 }
    END { for (i = 1; i <= n; i++) { split(rows[i], f, " ")
      dy = (f[2] in fy) ? sprintf("%+.2f", f[4] - fy[f[2]]) : "-"; da = (f[2] in fa) ? sprintf("%+.2f", f[5] - fa[f[2]]) : "-"
      printf "| %s %sp | %s | %.2f | %.2f | %s | %s |\n", f[1], f[2], f[3], f[4], f[5], dy, da } }' "$OUT/quality"
  if [ -s "$OUT/agent-latency.json" ]; then
    echo
    echo "agent per-segment latency (2 s segments, from its JSON summary): $(cat "$OUT/agent-latency.json")"
  else
    echo
    echo "agent: not run (no $AGENT with transcode --input); per-segment latency not measured"
    echo
  fi
} >"$report"
cat "$report"
log "report: $report (raw: $OUT/times, $OUT/quality)"
