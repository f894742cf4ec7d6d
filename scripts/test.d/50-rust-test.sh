#!/usr/bin/env bash
# Unit, integration and hardware-in-the-loop tests of every crate (tests start their own services: GStreamer
# pipelines, mosquitto, anvil, UDP swarms).  One test at a time per binary: several suites assert on timing
# (broker restarts, Last Will, watchdog pings) and the box has 2 cores, which parallel transcoding tests fill.
# The real-world corpus test (agent/media/tests/realworld.rs) ran in 45-browser already, which also plays its
# renditions in Chromium: it is not run twice.
set -euo pipefail
export RUST_TEST_THREADS=${RUST_TEST_THREADS:-1}
cargo test --workspace --locked --no-fail-fast -- --skip real_world_traits_transcode_completely_into_renditions_players_decode
