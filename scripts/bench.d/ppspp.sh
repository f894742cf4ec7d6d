#!/usr/bin/env bash
# PPSPP benchmarks over real UDP on loopback (see BENCHMARKS.md, section "ppspp").
#  1. static: one seeder -> one leecher, 50 MB, Merkle (SHA-1) integrity on, 1 KiB and 8 KiB chunks.
#     1 KiB is run twice: one chunk per datagram (1536-byte datagrams, as libswift sends) and with
#     multi-chunk DATA (a bin of up to 8 chunks per 9000-byte datagram).
#     Baseline: the RFC's reference implementation (libswift) at ~40 MB/s on this machine class
#     (figure given in the task; libswift is not built by this script). Ratio = ours / 40 MB/s.
#  2. live: one origin -> 16 peers, 3 Mbit/s for 20 s: origin upload as a multiple of one stream,
#     segment (chunk) delivery delay p50/p95 from publish to in-order delivery, completeness.
# Env: PPSPP_BENCH_MB (default 50), PPSPP_BENCH_LIVE_SECONDS (default 20), PPSPP_BENCH_RUNS (default 3).
set -euo pipefail
cd "$(dirname "$0")/../.."
MB=${PPSPP_BENCH_MB:-50}
SECS=${PPSPP_BENCH_LIVE_SECONDS:-20}
RUNS=${PPSPP_BENCH_RUNS:-3}
BASELINE_MBS=40
cargo build --release --locked -p ppspp-udp --bin ppspp-bench >&2
BIN=${CARGO_TARGET_DIR:-target}/release/ppspp-bench
echo "# ppspp bench $(date -u +%FT%TZ) load: $(cut -d' ' -f1-3 /proc/loadavg)"
for spec in "1024 1536" "1024 9000" "8192 8704"; do
  set -- $spec
  best=0
  for _ in $(seq "$RUNS"); do
    line=$("$BIN" static "$MB" "$1" "$2" sha1)
    echo "$line"
    mbs=$(sed -E 's/.*mb_per_s=([0-9.]+).*/\1/' <<<"$line")
    best=$(awk -v a="$best" -v b="$mbs" 'BEGIN{print (b>a)?b:a}')
  done
  awk -v c="$1" -v d="$2" -v m="$best" -v b="$BASELINE_MBS" \
    'BEGIN{printf "static chunk=%s max_datagram=%s best_of_runs=%.1f MB/s baseline=%d MB/s ratio=%.2fx\n", c, d, m, b, m/b}'
done
"$BIN" live 16 3000 "$SECS" 1024
