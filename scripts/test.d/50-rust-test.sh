#!/usr/bin/env bash
# Unit, integration and hardware-in-the-loop tests of every crate (tests start their own services: GStreamer
# pipelines, mosquitto, anvil, UDP swarms).  One test at a time per binary: several suites assert on timing
# (broker restarts, Last Will, watchdog pings) and the box has 2 cores, which parallel transcoding tests fill.
set -euo pipefail
export RUST_TEST_THREADS=${RUST_TEST_THREADS:-1}
cargo test --workspace --locked --no-fail-fast
