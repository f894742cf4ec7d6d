#!/usr/bin/env bash
# Offline Solidity toolchain for contracts/: foundry 1.7.1 (forge, anvil, cast native binaries from the npm
# platform packages) and solc-js, pinned in contracts/package-lock.json. Idempotent: a no-op when
# node_modules already matches the lockfile.
set -euo pipefail
cd "$(dirname "$0")/../../contracts"
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  echo "==> contracts: installing nodejs and npm from Debian" >&2
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo=sudo
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null
fi
stamp=node_modules/.package-lock.sha256
want=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ] || [ ! -x node_modules/@foundry-rs/forge-linux-amd64/bin/forge ]; then
  echo "==> contracts: npm ci (foundry 1.7.1 + solc-js, from package-lock.json)" >&2
  # the wrappers' postinstall scripts only fetch what the platform packages already contain
  npm ci --no-audit --no-fund --ignore-scripts --loglevel=error
  echo "$want" > "$stamp"
fi
