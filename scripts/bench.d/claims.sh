#!/usr/bin/env bash
# Claims on a real anvil with the real contracts, made by proof::driver::Driver from real receipts: claimWork
# gas for 1 (election) / 10 / 100 / 1000 segments and the verify gas of their challenged segments (proof
# length log2 n), then the latency from the last receipt stored to its claim mined at a block a second.
#   ./x bench claims   or   REPS=10 INPUT_KIB=512 bash scripts/bench.d/claims.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
(cd contracts && node_modules/@foundry-rs/forge-linux-amd64/bin/forge build -q)
cargo build -q --release --locked -p proof --example claim_bench
"${CARGO_TARGET_DIR:-$PWD/target}/release/examples/claim_bench" "${REPS:-10}" "${INPUT_KIB:-512}"
