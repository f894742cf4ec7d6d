#!/usr/bin/env bash
# fleet: the cargo-fuzz targets over the MQTT documents (desired config, commands, what devices publish, topic
# names) and the device's protocol rules fed any sequence of them must build and survive a short smoke run.
# Longer fuzzing: see agent/fleet/README.md ("Fuzzing") and scripts/fuzz-campaign.sh.
set -euo pipefail
# shellcheck source=scripts/lib/fuzz.sh
. "$(dirname "$0")/../lib/fuzz.sh"
fuzz_smoke fleet 15 documents device_core
echo "fleet: fuzz targets build and pass a 15 s smoke run each"
