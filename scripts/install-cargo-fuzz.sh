#!/usr/bin/env bash
# cargo-fuzz (pinned), for the coverage-guided campaign over every fuzz crate (agent/*/fuzz; `./x fuzz` runs
# this first). The test suite does not need it: it runs the targets in its own build. Idempotent.
set -euo pipefail
want=0.13.2
if ! cargo fuzz --version 2>/dev/null | grep -qF "$want"; then
  echo "installing cargo-fuzz $want" >&2
  cargo install cargo-fuzz --version "$want" --locked --quiet
fi
