# cargo-fuzz over the repository's fuzz crates (agent/<crate>/fuzz), sourced by the long campaign
# (scripts/fuzz-campaign.sh). The test suite does not build them instrumented: each crate's tests run its
# targets (tests/fuzz_targets.rs), and scripts/test.d/41-fuzz-targets.sh checks that the crates compile.
#
# Every fuzz crate builds into one target directory, target/fuzz at the repository root: the crates share
# most of their dependencies (and several of the agent's crates), which then build once with the fuzzing
# flags instead of once per crate. Their target names are unique across the crates, so no binary shadows
# another.
#
#   fuzz_cargo CRATE ARGS...             cargo fuzz ARGS... in agent/CRATE/fuzz, optimized, shared target dir

fuzz_root() { cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd; }

fuzz_cargo() {
  local crate=$1 sub=$2
  shift 2
  local root
  root=$(fuzz_root)
  (cd "$root/agent/$crate/fuzz" &&
    RUSTC_BOOTSTRAP=1 cargo fuzz "$sub" -O --target-dir "$root/target/fuzz" "$@")
}
