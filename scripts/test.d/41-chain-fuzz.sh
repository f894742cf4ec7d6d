#!/usr/bin/env bash
# chain: the cargo-fuzz targets over what a node sends back (revert data, JSON answers, ABI return data) must
# build and survive a short smoke run. Longer fuzzing: see agent/chain/README.md.
set -euo pipefail
# shellcheck source=scripts/lib/fuzz.sh
. "$(dirname "$0")/../lib/fuzz.sh"
fuzz_smoke chain 15 revert_data node_answers
echo "chain: fuzz targets build and pass a 15 s smoke run each"
