#!/usr/bin/env bash
# Unit, integration and hardware-in-the-loop tests of every crate (tests start their own services).
set -euo pipefail
cargo test --workspace --locked --no-fail-fast
