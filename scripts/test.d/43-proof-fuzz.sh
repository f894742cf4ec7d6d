#!/usr/bin/env bash
# proof: the cargo-fuzz target over what a verifier fetches from a transcoder (a proof bundle's manifest and
# files) must build and survive a short smoke run.  Longer: cd agent/proof/fuzz && cargo fuzz run bundle_manifest
set -euo pipefail
cd "$(dirname "$0")/../../agent/proof/fuzz"
export RUSTC_BOOTSTRAP=1
cargo fuzz build -O
for t in bundle_manifest; do
  cargo fuzz run -O "$t" -- -max_total_time=15 -max_len=4096 >/dev/null 2>&1 || { echo "fuzz smoke run of $t failed" >&2; cargo fuzz run -O "$t" -- -max_total_time=15 -max_len=4096; exit 1; }
done
echo "proof: fuzz target builds and passes a 15 s smoke run"
