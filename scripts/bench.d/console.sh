#!/usr/bin/env bash
# The operator console at fleet scale: `edge-fleet serve` with N boxes (default 1000; the real device driver,
# telemetry every 10 s) over a real mosquitto with mutual TLS. The console's CPU and memory against the
# broker's CPU in the same window, the page's first load in headless Chromium, and the delay from a box's
# SIGKILL to /metrics and the page showing it offline, against a bare MQTT subscriber getting its Last Will.
#   ./x bench console   or   N=1000 WINDOW=60 bash scripts/bench.d/console.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo build -q --release --locked -p fleet --bin edge-fleet --example console_bench
# a socket per box in this process and in the broker
[ "$(ulimit -n)" -ge 4096 ] || ulimit -n 4096
"${CARGO_TARGET_DIR:-$PWD/target}/release/examples/console_bench" "${N:-1000}" "${WINDOW:-60}"
