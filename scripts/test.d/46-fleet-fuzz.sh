#!/usr/bin/env bash
# fleet: the cargo-fuzz targets over the MQTT documents (desired config, commands, what devices publish, topic
# names) and the device's protocol rules fed any sequence of them must build and survive a short smoke run.
# Longer fuzzing: see agent/fleet/README.md ("Fuzzing") and scripts/fuzz-campaign.sh.
set -euo pipefail
cd "$(dirname "$0")/../../agent/fleet/fuzz"
export RUSTC_BOOTSTRAP=1
cargo fuzz build -O
for t in documents device_core; do
  cargo fuzz run -O "$t" -- -max_total_time=15 -max_len=4096 -timeout=10 >/dev/null 2>&1 || { echo "fuzz smoke run of $t failed" >&2; cargo fuzz run -O "$t" -- -max_total_time=15 -max_len=4096 -timeout=10; exit 1; }
done
echo "fleet: fuzz targets build and pass a 15 s smoke run each"
