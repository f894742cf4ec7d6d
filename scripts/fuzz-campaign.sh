#!/usr/bin/env bash
# The long fuzzing campaign (the test suite only runs each target on seeds and seeded mutations): every target
# of every cargo-fuzz crate in the repository (agent/*/fuzz), one after the other, for N minutes each, then one
# line per target with its executions, coverage (libFuzzer's `cov`: edges reached; `ft`: features), corpus size
# and result. Exits 1 if any target failed (a panic, a memory limit, or one input running over 10 s); the input
# is kept in that crate's fuzz/artifacts/<target>/.
#
#   scripts/fuzz-campaign.sh [--minutes N] [CRATE...]      (also: ./x fuzz [--minutes N] [CRATE...])
#
# N defaults to 10 and may be a fraction (0.5). CRATE names a crate directory under agent/ (e.g. fleet); all
# by default. The corpus grows in each crate's fuzz/corpus/<target>/ (git-ignored), so a second campaign
# starts where the first stopped.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
minutes=10
crates=()
while [ $# -gt 0 ]; do
  case "$1" in
    --minutes) minutes="$2"; shift 2 ;;
    -h|--help) sed -n '2,11p' "$0"; exit 0 ;;
    *) crates+=("$1"); shift ;;
  esac
done
secs=$(awk -v m="$minutes" 'BEGIN { s = int(m * 60); if (s < 1) s = 1; print s }')
if [ ${#crates[@]} -eq 0 ]; then
  for d in "$root"/agent/*/fuzz/Cargo.toml; do crates+=("$(basename "$(dirname "$(dirname "$d")")")"); done
fi
# shellcheck source=scripts/lib/fuzz.sh
. "$root/scripts/lib/fuzz.sh"
# Each crate's tests hold hand-made seeds for its targets (tests/fuzz_targets.rs): the campaign starts from them.
for c in "${crates[@]}"; do
  (cd "$root" && FUZZ_SMOKE_EXPORT=1 FUZZ_SMOKE_RUNS=0 cargo test -q --locked -p "$c" --test fuzz_targets >/dev/null) \
    || { echo "the seeds of agent/$c could not be written" >&2; exit 1; }
done
logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT
results=()
failed=0
echo "fuzz campaign: ${#crates[@]} crates, ${secs} s per target, $(nproc) CPUs, $(uname -m)" >&2
for c in "${crates[@]}"; do
  dir="$root/agent/$c/fuzz"
  [ -f "$dir/Cargo.toml" ] || { echo "no fuzz crate in agent/$c" >&2; exit 2; }
  fuzz_cargo "$c" build >&2
  for t in $(cd "$dir" && cargo fuzz list); do
    echo "== $c/$t: ${secs} s" >&2
    log="$logs/$c-$t.log"
    if fuzz_cargo "$c" run "$t" -- -max_total_time="$secs" -max_len=4096 -timeout=10 -print_final_stats=1 >"$log" 2>&1; then
      status=ok
    else
      status=CRASH
      failed=1
      tail -n 40 "$log" >&2
    fi
    # the last status line libFuzzer printed: "#RUNS DONE cov: N ft: N corp: N/SIZE ..."
    last=$(grep -E '^#[0-9]+' "$log" | tail -n 1 || true)
    runs=$(sed -nE 's/^stat::number_of_executed_units: *([0-9]+).*/\1/p' "$log" | tail -n 1)
    [ -n "$runs" ] || runs=$(sed -nE 's/^#([0-9]+).*/\1/p' <<<"$last")
    cov=$(sed -nE 's/.* cov: ([0-9]+).*/\1/p' <<<"$last")
    ft=$(sed -nE 's/.* ft: ([0-9]+).*/\1/p' <<<"$last")
    corp=$(sed -nE 's/.* corp: ([0-9]+).*/\1/p' <<<"$last")
    rate=$(sed -nE 's/^stat::average_exec_per_sec: *([0-9]+).*/\1/p' "$log" | tail -n 1)
    results+=("$(printf '%-28s %12s %9s %6s %7s %6s  %s' "$c/$t" "${runs:-?}" "${rate:-?}" "${cov:-?}" "${ft:-?}" "${corp:-?}" "$status")")
  done
done
printf '%-28s %12s %9s %6s %7s %6s  %s\n' target executions exec/s cov ft corpus result
printf '%s\n' "${results[@]}"
exit "$failed"
