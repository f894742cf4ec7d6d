#!/usr/bin/env bash
# proof: the cargo-fuzz target over what a verifier fetches from a transcoder (a proof bundle's manifest and
# files) must build and survive a short smoke run.  Longer: cd agent/proof/fuzz && cargo fuzz run bundle_manifest
set -euo pipefail
# shellcheck source=scripts/lib/fuzz.sh
. "$(dirname "$0")/../lib/fuzz.sh"
fuzz_smoke proof 15 bundle_manifest
echo "proof: fuzz target builds and passes a 15 s smoke run"
