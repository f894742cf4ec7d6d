#!/usr/bin/env bash
# The Rust bindings in agent/chain/src/bindings are generated from the forge artifacts: rebuild the
# contracts, regenerate, and fail when the committed bindings differ (fix: cargo run -p chain --bin gen-bindings).
set -euo pipefail
cd "$(dirname "$0")/../.."
(cd contracts && node_modules/@foundry-rs/forge-linux-amd64/bin/forge build -q)
cargo run -q --locked -p chain --bin gen-bindings -- --check
