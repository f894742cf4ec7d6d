#!/usr/bin/env bash
# PPSPP benchmarks over real UDP on loopback (see BENCHMARKS.md, section "ppspp").
#  1. static: one seeder -> one leecher, 50 MB, Merkle (SHA-1) integrity on, 1 KiB and 8 KiB chunks.
#     1 KiB is run twice: one chunk per datagram (1536-byte datagrams, as libswift sends) and with
#     multi-chunk DATA (a bin of up to 8 chunks per 9000-byte datagram).
#     Baseline: the RFC's reference implementation (libswift). If PPSPP_LIBSWIFT points to a libswift `swift`
#     binary built elsewhere (this repository neither contains nor builds it), each run measures it side by side
#     on the same file (swift seeder -> swift leecher, wall time of the leecher process) and prints a second ratio
#     against it. The primary ratio is against the 40 MB/s figure given for libswift on this machine class.
#  2. live: one origin -> 16 peers, 3 Mbit/s for 20 s: origin upload as a multiple of one stream,
#     segment (chunk) delivery delay p50/p95 from publish to in-order delivery, completeness.
# Env: PPSPP_BENCH_MB (default 50), PPSPP_BENCH_LIVE_SECONDS (default 20), PPSPP_BENCH_RUNS (default 3).
set -euo pipefail
cd "$(dirname "$0")/../.."
MB=${PPSPP_BENCH_MB:-50}
SECS=${PPSPP_BENCH_LIVE_SECONDS:-20}
RUNS=${PPSPP_BENCH_RUNS:-3}
BASELINE_MBS=40
SWIFT=${PPSPP_LIBSWIFT:-}
cargo build --release --locked -p ppspp-udp --bin ppspp-bench >&2
BIN=${CARGO_TARGET_DIR:-target}/release/ppspp-bench
echo "# ppspp bench $(date -u +%FT%TZ) load: $(cut -d' ' -f1-3 /proc/loadavg)"
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

libswift_mbs() { # chunk size -> best MB/s of $RUNS libswift transfers of a MB-sized file over loopback
  local z=$1 port=$((20000 + RANDOM % 20000)) best=0 root s e mbs
  head -c "$((MB * 1000000))" /dev/urandom >"$WORK/f.bin"
  rm -f "$WORK"/f.bin.m*
  "$SWIFT" -f "$WORK/f.bin" -l "127.0.0.1:$port" -z "$z" -w 600s >"$WORK/seed.log" 2>&1 &
  local pid=$!
  for _ in $(seq 120); do grep -q "Root hash" "$WORK/seed.log" && break; sleep 0.5; done
  root=$(awk '/Root hash/{print $3}' "$WORK/seed.log")
  for _ in $(seq "$RUNS"); do
    rm -rf "$WORK/dl"; mkdir "$WORK/dl"
    s=$(date +%s.%N)
    timeout 300 "$SWIFT" -h "$root" -t "127.0.0.1:$port" -o "$WORK/dl" -z "$z" -q >/dev/null 2>&1 || true
    e=$(date +%s.%N)
    if cmp -s "$WORK/dl/$root" "$WORK/f.bin"; then
      mbs=$(awk -v s="$s" -v e="$e" -v m="$MB" 'BEGIN{printf "%.1f", m/(e-s)}')
      echo "baseline=libswift chunk=$z seconds=$(awk -v s="$s" -v e="$e" 'BEGIN{printf "%.3f", e-s}') mb_per_s=$mbs" >&2
      best=$(awk -v a="$best" -v b="$mbs" 'BEGIN{print (b>a)?b:a}')
    fi
  done
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  echo "$best"
}

for spec in "1024 1536" "1024 9000" "8192 8704"; do
  set -- $spec
  SIDE=""
  if [ -n "$SWIFT" ]; then
    SIDE=$(libswift_mbs "$1")
    echo "libswift chunk=$1 best_of_runs=$SIDE MB/s (side by side; process wall time, libswift exits on a 1 s tick, so this under-states it by up to 1 s per run)"
  fi
  best=0
  for _ in $(seq "$RUNS"); do
    line=$("$BIN" static "$MB" "$1" "$2" sha1)
    echo "$line"
    mbs=$(sed -E 's/.*mb_per_s=([0-9.]+).*/\1/' <<<"$line")
    best=$(awk -v a="$best" -v b="$mbs" 'BEGIN{print (b>a)?b:a}')
  done
  awk -v c="$1" -v d="$2" -v m="$best" -v b="$BASELINE_MBS" -v l="$SIDE" \
    'BEGIN{printf "static chunk=%s max_datagram=%s best_of_runs=%.1f MB/s ratio_vs_%.0fMBps_reference=%.2fx", c, d, m, b, m/b;
           if (l != "" && l > 0) printf " ratio_vs_libswift_side_by_side=%.2fx", m/l; printf "\n"}'
done
"$BIN" live 16 3000 "$SECS" 1024
