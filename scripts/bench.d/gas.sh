#!/usr/bin/env bash
# Gas report of the protocol contracts (contracts/GAS.md): real transactions on a fresh anvil, gas from the
# receipts. Gas is deterministic and does not depend on machine load. Fails if claimWork exceeds 150k gas.
set -euo pipefail
cd "$(dirname "$0")/../.."
(cd contracts && node_modules/@foundry-rs/forge-linux-amd64/bin/forge build -q)
cargo run -q --release --locked -p chain --example gas_report -- contracts/GAS.md
