#!/usr/bin/env bash
# Every cargo-fuzz crate (agent/<crate>/fuzz) must compile as cargo-fuzz builds it (`--cfg fuzzing`, its own
# lock file), warning-free. What the targets do runs in the workspace test step: each crate's
# tests/fuzz_targets.rs includes its target files and runs them on seeds and seeded mutations (the fuzz-smoke
# crate). The coverage-guided campaign, with instrumented builds: ./x fuzz (scripts/fuzz-campaign.sh).
set -euo pipefail
cd "$(dirname "$0")/../.."
n=0
for manifest in agent/*/fuzz/Cargo.toml; do
  crate=$(basename "$(dirname "$(dirname "$manifest")")")
  [ -f "agent/$crate/tests/fuzz_targets.rs" ] \
    || { echo "agent/$crate/fuzz: no agent/$crate/tests/fuzz_targets.rs runs its targets in the test build" >&2; exit 1; }
  for t in agent/"$crate"/fuzz/fuzz_targets/*.rs; do
    grep -q "fuzz_targets/$(basename "$t")\"" "agent/$crate/tests/fuzz_targets.rs" \
      || { echo "$t: not run by agent/$crate/tests/fuzz_targets.rs" >&2; exit 1; }
    n=$((n + 1))
  done
  # one target directory for all: the crates share most of their dependencies
  RUSTFLAGS="--cfg fuzzing -D warnings" RUSTC_BOOTSTRAP=1 cargo check -q --locked --bins \
    --manifest-path "$manifest" --target-dir "${CARGO_TARGET_DIR:-$PWD/target}/fuzz-check"
done
echo "fuzz: $n targets in $(ls -d agent/*/fuzz | wc -l) cargo-fuzz crates compile, and each is run by its crate's tests"
