# cargo-fuzz over the repository's fuzz crates (agent/<crate>/fuzz), sourced by the fuzz test steps and the
# long campaign (scripts/fuzz-campaign.sh).
#
# Every fuzz crate builds into one target directory, target/fuzz at the repository root: the crates share
# most of their dependencies (and several of the agent's crates), which then build once with the fuzzing
# flags instead of once per crate. Their target names are unique across the crates, so no binary shadows
# another.
#
#   fuzz_cargo CRATE ARGS...             cargo fuzz ARGS... in agent/CRATE/fuzz, optimized, shared target dir
#   fuzz_smoke CRATE SECONDS TARGET...   builds CRATE's targets, runs each for SECONDS; on a failure prints the
#                                        run's output and returns 1
#
# FUZZ_FLAGS (optional): extra libFuzzer flags for the smoke runs (default: -max_len=4096 -timeout=10).
# FUZZ_SMOKE_OPT_LEVEL (default 0): the smoke runs build without optimizations (the release profile's other
# settings kept: no debug assertions, no overflow checks, as in the campaign). Their compile takes 2.3x less
# CPU (proof's targets from scratch: 358 s against 830 s), which is most of a smoke step; they run 15-20 s
# each and check that the targets build and that the corpus and fresh inputs pass, not how deep they go.
# The campaign (`./x fuzz`) builds optimized.

fuzz_root() { cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd; }

fuzz_cargo() {
  local crate=$1 sub=$2
  shift 2
  local root
  root=$(fuzz_root)
  (cd "$root/agent/$crate/fuzz" &&
    RUSTC_BOOTSTRAP=1 cargo fuzz "$sub" -O --target-dir "$root/target/fuzz" "$@")
}

fuzz_smoke() {
  local crate=$1 secs=$2
  shift 2
  local flags=${FUZZ_FLAGS:--max_len=4096 -timeout=10} t
  export CARGO_PROFILE_RELEASE_OPT_LEVEL=${FUZZ_SMOKE_OPT_LEVEL:-0}
  fuzz_cargo "$crate" build
  for t in "$@"; do
    # shellcheck disable=SC2086
    if ! fuzz_cargo "$crate" run "$t" -- -max_total_time="$secs" $flags >/dev/null 2>&1; then
      echo "fuzz smoke run of $crate/$t failed" >&2
      # shellcheck disable=SC2086
      fuzz_cargo "$crate" run "$t" -- -max_total_time="$secs" $flags
      return 1
    fi
  done
}
