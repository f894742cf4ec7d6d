#!/bin/sh
# Stand-in for `edge-agent transcode` in scripts/bench.d/transcode.sh: the media crate's example driver with
# the gst-tuned x264 setting (me=dia) and MEDIA_ENGINES pipelines on alternate segments (default 2).
exec "${MEDIA_EXAMPLE:-${CARGO_TARGET_DIR:-target}/release/examples/transcode}" "$@" --x264-opts me=dia --engines "${MEDIA_ENGINES:-2}"
