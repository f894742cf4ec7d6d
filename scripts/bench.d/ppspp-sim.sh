#!/usr/bin/env bash
# A live stream to many viewers on PPSPP's deterministic simulated network (agent/ppspp/benches/viewers.rs):
# origin upload against one copy of the stream (a relay sends one per viewer), publish-to-delivery delay
# p50/p95, completeness; a lossless run first as the baseline, then 10 % loss, compared as ratios.
# Env: VIEWERS, SECONDS, MBIT, LOSS, UPLINK_MBIT, SEED (see the bench's header; BENCHMARKS.md, "ppspp").
set -euo pipefail
cd "$(dirname "$0")/../.."
echo "# ppspp-sim bench $(date -u +%FT%TZ) load: $(cut -d' ' -f1-3 /proc/loadavg)"
cargo bench --locked -p ppspp --bench viewers
