#!/usr/bin/env bash
# media: the cargo-fuzz target over what a broadcaster sends (an MPEG-TS segment, any bytes) must build and
# survive a short smoke run. Longer fuzzing: see agent/media/README.md ("Fuzzing").
set -euo pipefail
cd "$(dirname "$0")/../../agent/media/fuzz"
export RUSTC_BOOTSTRAP=1
cargo fuzz build -O
for t in demux; do
  cargo fuzz run -O "$t" -- -max_total_time=15 -max_len=4096 >/dev/null 2>&1 || { echo "fuzz smoke run of $t failed" >&2; cargo fuzz run -O "$t" -- -max_total_time=15 -max_len=4096; exit 1; }
done
echo "media: fuzz target builds and passes a 15 s smoke run"
