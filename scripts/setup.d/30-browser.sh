#!/usr/bin/env bash
# Browser playback check (tests/browser): hls.js and puppeteer-core, pinned in tests/browser/package-lock.json,
# driving Debian's chromium (scripts/apt-packages.txt); no browser is downloaded.  Idempotent: a no-op when
# node_modules already matches the lockfile.
set -euo pipefail
cd "$(dirname "$0")/../../tests/browser"
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  echo "==> browser: installing nodejs and npm from Debian" >&2
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo=sudo
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null
fi
stamp=node_modules/.package-lock.sha256
want=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ] || [ ! -f node_modules/hls.js/dist/hls.min.js ] \
  || [ ! -f node_modules/puppeteer-core/package.json ]; then
  echo "==> browser: npm ci (hls.js + puppeteer-core, from package-lock.json)" >&2
  PUPPETEER_SKIP_DOWNLOAD=1 npm ci --no-audit --no-fund --ignore-scripts --loglevel=error
  echo "$want" > "$stamp"
fi
