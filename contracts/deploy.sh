#!/usr/bin/env bash
# Deploy the whole contract set (script/Deploy.s.sol) and write its addresses + chain id as JSON.
#
#   contracts/deploy.sh [--rpc-url URL] [--private-key-file FILE] [--out FILE]
#
# The deployer's key never goes on a command line (every user of the machine can read those): it comes from
# --private-key-file FILE (hex), else the environment (DEPLOYER_PRIVATE_KEY), else the systemd credential
# `deployer-private-key` (a file in $CREDENTIALS_DIRECTORY), else anvil's first dev key; forge reads it from
# its environment.
# Defaults: http://127.0.0.1:8545, deployments/<chainId>.json. Parameters come from
# DeployLib.devConfig and can be overridden with environment variables (ROUND_LENGTH=..., see Deploy.s.sol).
# The JSON is what the agent reads (agent/chain: Deployment::load):
#   {"chainId":31337,"deployBlock":..,"deployer":"0x..","solver":"0x..","controller":"0x..","token":"0x..",
#    "roundsManager":"0x..","bondingManager":"0x..","minter":"0x..","jobsManager":"0x..","verifier":"0x..",
#    "serviceRegistry":"0x.."}
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
rpc=http://127.0.0.1:8545
key_file=""
out=""
while [ $# -gt 0 ]; do
  case "$1" in
    --rpc-url) rpc="$2"; shift 2 ;;
    --private-key-file) key_file="$2"; shift 2 ;;
    --private-key|--private-key=*)
      echo "deploy.sh: a key on the command line is readable by every process; use --private-key-file FILE or DEPLOYER_PRIVATE_KEY" >&2
      exit 2 ;;
    --out) out="$2"; shift 2 ;;
    *) echo "deploy.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
if [ -n "$key_file" ]; then
  key=$(tr -d ' \t\r\n' < "$key_file") || { echo "deploy.sh: cannot read $key_file" >&2; exit 2; }
elif [ -n "${DEPLOYER_PRIVATE_KEY:-}" ]; then
  key="$DEPLOYER_PRIVATE_KEY"
elif [ -n "${CREDENTIALS_DIRECTORY:-}" ] && [ -r "$CREDENTIALS_DIRECTORY/deployer-private-key" ]; then
  key=$(tr -d ' \t\r\n' < "$CREDENTIALS_DIRECTORY/deployer-private-key")
else
  key=0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80 # anvil dev account 0 (public)
fi
[ -n "$key" ] || { echo "deploy.sh: the deployer key is empty" >&2; exit 2; }
forge="$here/node_modules/@foundry-rs/forge-linux-amd64/bin/forge"
[ -x "$forge" ] || { echo "deploy.sh: forge missing; run ./x setup (scripts/setup.d/20-contracts.sh)" >&2; exit 1; }
cd "$here"
mkdir -p deployments
tmp="deployments/.deploy-$$.json"
trap 'rm -f "$here/$tmp"' EXIT
DEPLOYER_PRIVATE_KEY="$key" DEPLOY_OUT="$tmp" "$forge" script script/Deploy.s.sol:Deploy \
  --rpc-url "$rpc" --broadcast --slow -q >&2
[ -s "$tmp" ] || { echo "deploy.sh: the deploy script wrote no $tmp" >&2; exit 1; }
chain=$(jq -r .chainId "$tmp")
if [ -z "$out" ]; then out="$here/deployments/$chain.json"; fi
mkdir -p "$(dirname "$out")"
mv "$tmp" "$out"
echo "$out"
