#!/usr/bin/env bash
# cargo-fuzz (pinned) for the ppspp fuzz targets (agent/ppspp/fuzz). Idempotent.
set -euo pipefail
want=0.13.2
if ! cargo fuzz --version 2>/dev/null | grep -qF "$want"; then
  echo "installing cargo-fuzz $want" >&2
  cargo install cargo-fuzz --version "$want" --locked --quiet
fi
