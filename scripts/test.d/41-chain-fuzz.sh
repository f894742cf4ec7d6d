#!/usr/bin/env bash
# chain: the cargo-fuzz targets over what a node sends back (revert data, JSON answers, ABI return data) must
# build and survive a short smoke run. Longer fuzzing: see agent/chain/README.md.
set -euo pipefail
cd "$(dirname "$0")/../../agent/chain/fuzz"
export RUSTC_BOOTSTRAP=1
cargo fuzz build -O
for t in revert_data node_answers; do
  cargo fuzz run -O "$t" -- -max_total_time=15 -max_len=4096 >/dev/null 2>&1 || { echo "fuzz smoke run of $t failed" >&2; cargo fuzz run -O "$t" -- -max_total_time=15 -max_len=4096; exit 1; }
done
echo "chain: fuzz targets build and pass a 15 s smoke run each"
