#!/usr/bin/env bash
# Protocol contracts: forge tests (unit + fuzz), then a fresh anvil, the deploy command, and an independent
# client (cast) calling every view function of the deployed set (contracts/check-views.sh).
set -euo pipefail
cd "$(dirname "$0")/../../contracts"
bin=node_modules/@foundry-rs
forge=$bin/forge-linux-amd64/bin/forge
anvil=$bin/anvil-linux-amd64/bin/anvil
[ -x "$forge" ] && [ -x "$anvil" ] || { echo "contracts toolchain missing: run ./x setup" >&2; exit 1; }

# the native forge binary: its exit code is the verdict (the npm wrapper always exits 0)
"$forge" test

work=$(mktemp -d)
"$anvil" --host 127.0.0.1 --port 0 >"$work/anvil.log" 2>&1 &
anvil_pid=$!
trap 'kill $anvil_pid 2>/dev/null || true; rm -rf "$work"' EXIT
port=""
for _ in $(seq 100); do
  port=$(grep -oP 'Listening on 127\.0\.0\.1:\K[0-9]+' "$work/anvil.log" || true)
  [ -n "$port" ] && break
  kill -0 $anvil_pid 2>/dev/null || { cat "$work/anvil.log" >&2; exit 1; }
  sleep 0.1
done
[ -n "$port" ] || { echo "anvil did not print its port" >&2; exit 1; }
rpc=http://127.0.0.1:$port
# the deployer's key from a file (anvil's public dev key 0); deploy.sh refuses one on its command line
dev_key=0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80
(umask 077; echo "$dev_key" >"$work/deployer.key")
if ./deploy.sh --rpc-url "$rpc" --private-key "$dev_key" >/dev/null 2>&1; then
  echo "deploy.sh took a private key on its command line" >&2; exit 1
fi
./deploy.sh --rpc-url "$rpc" --private-key-file "$work/deployer.key" --out "$work/deployment.json" >/dev/null
jq -e '.chainId == 31337 and ([.jobsManager, .serviceRegistry] | all(test("^0x[0-9a-fA-F]{40}$")))' "$work/deployment.json" >/dev/null \
  || { echo "deployment JSON malformed" >&2; cat "$work/deployment.json" >&2; exit 1; }
./check-views.sh "$rpc" "$work/deployment.json"
