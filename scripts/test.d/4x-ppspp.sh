#!/usr/bin/env bash
# ppspp (agent/ppspp, agent/ppspp-udp): the sans-IO core must not depend on tokio (or any async runtime or
# socket crate), open sockets or read the clock. Unit, simulation, golden-vector, fuzz-target and loopback tests
# run in the workspace `cargo test` step; fuzzing: see agent/ppspp/README.md ("Fuzzing").
set -euo pipefail
cd "$(dirname "$0")/../.."

deps=$(cargo tree -p ppspp -e normal --locked --prefix none)
if grep -qE '^(tokio|mio|async-std|smol|socket2) ' <<<"$deps"; then
  echo "ppspp core must stay sans-IO, but it depends on:" >&2
  grep -E '^(tokio|mio|async-std|smol|socket2) ' <<<"$deps" >&2
  exit 1
fi
# (non-test code only: everything before a file's `#[cfg(test)]` module)
if for f in $(find agent/ppspp/src -name "*.rs"); do sed '/#\[cfg(test)\]/,$d' "$f"; done |
  grep -nE 'std::net::UdpSocket|Instant::now\(\)|SystemTime::now\(\)'; then
  echo "ppspp core must not read the clock or open sockets" >&2
  exit 1
fi
echo "ppspp: core is sans-IO (no tokio, no sockets, no clock)"

