#!/usr/bin/env bash
# edge-agent: the cargo-fuzz target over what the HTTP ingest reads from a request (path segments, X-Job-Id and
# X-Broadcaster-Signature, the /swarm/join body; agent/edge-agent/src/request.rs) must build and survive a
# short smoke run. Longer fuzzing: scripts/fuzz-campaign.sh.
set -euo pipefail
# shellcheck source=scripts/lib/fuzz.sh
. "$(dirname "$0")/../lib/fuzz.sh"
fuzz_smoke edge-agent 15 request
echo "edge-agent: the ingest request fuzz target builds and passes a 15 s smoke run"
