#!/usr/bin/env bash
# Fair quality baseline for independent segments: split the transcode benchmark's source at its keyframes
# into ~2 s segments (stream copy, as the engine's splitter cuts), run ffmpeg's ladder (veryfast, CBR with
# 600 ms VBV, GOP 60, scenecut off; the x264 settings of scripts/bench.d/transcode.sh) on every segment
# separately, concatenate each rendition and report its video bitrate and PSNR against the source (ffmpeg
# lanczos reference, as transcode.sh does).
#   bash agent/media/bench/ffmpeg-per-segment.sh SOURCE.ts [WORKDIR]
set -euo pipefail
SRC=$1
W=${2:-$(mktemp -d)}
mkdir -p "$W/in" "$W/out"
ffmpeg -nostdin -hide_banner -loglevel error -y -i "$SRC" -map 0:v -c copy -f segment -segment_time 2 \
  -reset_timestamps 0 "$W/in/%03d.ts"
LADDER=("720 1280 3000" "480 854 1500" "360 640 800")
for s in "$W"/in/*.ts; do
  n=$(basename "$s" .ts)
  args=()
  for r in "${LADDER[@]}"; do
    read -r h w k <<<"$r"
    args+=(-map "[v$h]" -c:v libx264 -preset veryfast -x264-params me=dia -b:v ${k}k -maxrate ${k}k
      -bufsize $((k * 6 / 10))k -g 60 -keyint_min 60 -sc_threshold 0 -copyts -f mpegts "$W/out/$h-$n.ts")
  done
  ffmpeg -nostdin -hide_banner -loglevel error -y -copyts -i "$s" -filter_complex \
    "[0:v]split=3[a][b][c];[a]scale=1280:720[v720];[b]scale=854:480[v480];[c]scale=640:360[v360]" "${args[@]}"
done
for r in "${LADDER[@]}"; do
  read -r h w k <<<"$r"
  cat "$W"/out/"$h"-*.ts >"$W/$h.ts"
  kbps=$(ffprobe -v error -select_streams v:0 -show_entries packet=size -of csv=p=0 "$W/$h.ts" |
    awk -F, 'NF && $1 != "" { s += $1; n++ } END { printf "%.0f", s * 8 / (n / 30) / 1000 }')
  psnr=$(ffmpeg -nostdin -hide_banner -nostats -i "$W/$h.ts" -i "$SRC" -filter_complex \
    "[1:v]scale=$w:$h:flags=lanczos+accurate_rnd+full_chroma_int[ref];[0:v][ref]psnr" -f null - 2>&1 |
    grep -o 'PSNR y:[0-9.]* .* average:[0-9.]*')
  echo "ffmpeg-per-segment ${h}p: $(ls "$W"/out/"$h"-*.ts | wc -l) segments, ${kbps} kbit/s, $psnr"
done
