#!/usr/bin/env bash
# edge-agent: the cargo-fuzz target over what the HTTP ingest reads from a request (path segments, X-Job-Id and
# X-Broadcaster-Signature, the /swarm/join body; agent/edge-agent/src/request.rs) must build and survive a
# short smoke run. Longer fuzzing: scripts/fuzz-campaign.sh.
set -euo pipefail
cd "$(dirname "$0")/../../agent/edge-agent/fuzz"
export RUSTC_BOOTSTRAP=1
cargo fuzz build -O
for t in request; do
  cargo fuzz run -O "$t" -- -max_total_time=15 -max_len=4096 -timeout=10 >/dev/null 2>&1 || { echo "fuzz smoke run of $t failed" >&2; cargo fuzz run -O "$t" -- -max_total_time=15 -max_len=4096 -timeout=10; exit 1; }
done
echo "edge-agent: the ingest request fuzz target builds and passes a 15 s smoke run"
