#!/usr/bin/env bash
# segment-swarm: the cargo-fuzz targets over what peers send (a live swarm's byte stream of segment records,
# a swarm manifest fetched over HTTP) must build and survive a short smoke run. Longer fuzzing: see
# agent/segment-swarm/README.md ("Fuzzing") and scripts/fuzz-campaign.sh.
set -euo pipefail
# shellcheck source=scripts/lib/fuzz.sh
. "$(dirname "$0")/../lib/fuzz.sh"
fuzz_smoke segment-swarm 15 deframe manifest
echo "segment-swarm: fuzz targets build and pass a 15 s smoke run each"
