#!/usr/bin/env bash
# Fleet: command round trip of the fleet layer (operator -> device -> correlated result, QoS 1, mutual TLS,
# real mosquitto) against a bare MQTT v5 request/response echo over the same broker and TLS (baseline),
# and device reconnect time after a broker restart against the 5 s requirement.
#   N round trips (default 1000), R broker restarts (default 5):  ./x bench fleet  or  N=2000 R=10 bash scripts/bench.d/fleet.sh
set -euo pipefail
cargo build -q --release --locked -p fleet --example fleet_bench
"${CARGO_TARGET_DIR:-$PWD/target}/release/examples/fleet_bench" "${N:-1000}" "${R:-5}"
