#!/usr/bin/env bash
# media: the cargo-fuzz target over what a broadcaster sends (an MPEG-TS segment, any bytes) must build and
# survive a short smoke run. Longer fuzzing: see agent/media/README.md ("Fuzzing").
set -euo pipefail
# shellcheck source=scripts/lib/fuzz.sh
. "$(dirname "$0")/../lib/fuzz.sh"
fuzz_smoke media 15 demux
echo "media: fuzz target builds and passes a 15 s smoke run"
