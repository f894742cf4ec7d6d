#!/usr/bin/env bash
# Proof store (agent/proof): receipts stored per second, batched and durable, against sled storing the same
# bytes in the same run.   ./x bench proof   or   N=200000 M=2000 bash scripts/bench.d/proof.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo build -q --release --locked -p proof --example receipt_bench
"${CARGO_TARGET_DIR:-$PWD/target}/release/examples/receipt_bench" "${N:-200000}" "${M:-2000}"
