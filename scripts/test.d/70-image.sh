#!/usr/bin/env bash
# The appliance image: built once (the disk at version 1, the update bundles the test installs), then booted
# in QEMU through updates, a refused bundle of each kind, a rollback and a power cut (image/test/run.sh).
# The image carries the debug build of the agent that the earlier steps built: the same code, without a
# release build in the test budget (`./x image` and `./x bench image` use the release build).
set -euo pipefail
[ "$(id -u)" -eq 0 ] || { echo "70-image: must run as root (mmdebstrap, file ownership in the image)" >&2; exit 1; }
cargo build -q --locked -p edge-agent --bin edge-agent
cargo build -q --locked -p fleet --bin edge-fleet
AGENT=${CARGO_TARGET_DIR:-$PWD/target}/debug/edge-agent OUT=$PWD/out/image-test bash image/test/all.sh
