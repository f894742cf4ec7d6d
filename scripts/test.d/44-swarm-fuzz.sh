#!/usr/bin/env bash
# segment-swarm: the cargo-fuzz targets over what peers send (a live swarm's byte stream of segment records,
# a swarm manifest fetched over HTTP) must build and survive a short smoke run. Longer fuzzing: see
# agent/segment-swarm/README.md ("Fuzzing") and scripts/fuzz-campaign.sh.
set -euo pipefail
cd "$(dirname "$0")/../../agent/segment-swarm/fuzz"
export RUSTC_BOOTSTRAP=1
cargo fuzz build -O
for t in deframe manifest; do
  cargo fuzz run -O "$t" -- -max_total_time=15 -max_len=4096 -timeout=10 >/dev/null 2>&1 || { echo "fuzz smoke run of $t failed" >&2; cargo fuzz run -O "$t" -- -max_total_time=15 -max_len=4096 -timeout=10; exit 1; }
done
echo "segment-swarm: fuzz targets build and pass a 15 s smoke run each"
