#!/usr/bin/env bash
# ./x bench image: the appliance image's figures (BENCHMARKS.md, "image"): sizes, build times, power-on to
# READY in QEMU, update download and install, command to kept slot, command to rollback. The image carries
# the release agent, as `./x image` builds it.
set -euo pipefail
cargo build -q --release --locked -p edge-agent
cargo build -q --locked -p fleet --bin edge-fleet
AGENT=${CARGO_TARGET_DIR:-$PWD/target}/release/edge-agent OUT=$PWD/out/image-bench bash image/test/all.sh 2>&1 |
  grep -E '^figure:|^==> image test|FAILED'
