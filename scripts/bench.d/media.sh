#!/usr/bin/env bash
# Media engine (agent/media) in the transcode benchmark: builds the crate's example driver and runs
# scripts/bench.d/transcode.sh with it as AGENT, against ffmpeg and the tuned gst-launch pipeline in the same
# rounds.  See BENCHMARKS.md, "media engine".   ./x bench media   (env: ROUNDS, MEDIA_ENGINES, BENCH_OUT)
set -euo pipefail
ROOT=${ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
cd "$ROOT"
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
cargo build --release -p media --example transcode
MEDIA_EXAMPLE=$CARGO_TARGET_DIR/release/examples/transcode AGENT=$ROOT/agent/media/bench/agent-example.sh \
  ONLY=${ONLY:-ffmpeg gst-tuned agent} BENCH_OUT=${BENCH_OUT:-$ROOT/out/bench/media} bash scripts/bench.d/transcode.sh
