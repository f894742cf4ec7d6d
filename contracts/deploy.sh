#!/usr/bin/env bash
# Deploy the whole contract set (script/Deploy.s.sol) and write its addresses + chain id as JSON.
#
#   contracts/deploy.sh [--rpc-url URL] [--private-key HEX] [--out FILE]
#
# Defaults: http://127.0.0.1:8545, anvil's first dev key, deployments/<chainId>.json. Parameters come from
# DeployLib.devConfig and can be overridden with environment variables (ROUND_LENGTH=..., see Deploy.s.sol).
# The JSON is what the agent reads (agent/chain: Deployment::load):
#   {"chainId":31337,"deployBlock":..,"deployer":"0x..","solver":"0x..","controller":"0x..","token":"0x..",
#    "roundsManager":"0x..","bondingManager":"0x..","minter":"0x..","jobsManager":"0x..","verifier":"0x..",
#    "serviceRegistry":"0x.."}
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
rpc=http://127.0.0.1:8545
key=0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80 # anvil dev account 0 (public)
out=""
while [ $# -gt 0 ]; do
  case "$1" in
    --rpc-url) rpc="$2"; shift 2 ;;
    --private-key) key="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    *) echo "deploy.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
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
