#!/usr/bin/env bash
# ppspp (agent/ppspp, agent/ppspp-udp): architecture boundary and fuzz targets.
#  - the sans-IO core must not depend on tokio (or any async runtime / socket crate);
#  - the cargo-fuzz targets must build (stable rustc with RUSTC_BOOTSTRAP=1) and survive a short smoke run.
# Unit, simulation, golden-vector and loopback tests run in the workspace `cargo test` step.
# Longer fuzzing: see agent/ppspp/README.md ("Fuzzing").
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

# shellcheck source=scripts/lib/fuzz.sh
. scripts/lib/fuzz.sh
FUZZ_FLAGS="-max_len=2048" fuzz_smoke ppspp 20 decode_datagram peer_ops
echo "ppspp: fuzz targets build and pass a 20 s smoke run each"
