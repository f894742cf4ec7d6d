#!/bin/sh
# Stand-in for `edge-agent transcode` in scripts/bench.d/transcode.sh: the media crate's example driver with
# MEDIA_ENGINES pipelines on alternate segments (default 2) in MEDIA_MODE (restart, the default; continuous: one
# engine whose encoders run on without lookahead; lookahead: one engine whose encoders keep their lookahead and
# B-frames); transcode.sh passes the x264 setting (--x264-opts, gst-tuned's me=dia by default).
# Two malloc arenas, as edge-agent's main sets them (agent/edge-agent/src/malloc.rs): without, GStreamer's
# streaming threads get arenas of their own and the driver's peak RSS grows with the input's length.
export MALLOC_ARENA_MAX=${MALLOC_ARENA_MAX:-2}
exec "${MEDIA_EXAMPLE:-${CARGO_TARGET_DIR:-target}/release/examples/transcode}" "$@" --engines "${MEDIA_ENGINES:-2}" \
  --segment-mode "${MEDIA_MODE:-restart}"
