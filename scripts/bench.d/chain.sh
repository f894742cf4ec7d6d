#!/usr/bin/env bash
# Chain client (agent/chain, the daemon's [chain] keeper) on a local chain with 1 s blocks and 20-block rounds:
#  - JSON-RPC requests per block of a daemon that is a registered, active transcoder with reward automation on,
#    over whole rounds (round initialization and reward included) and over the idle stretch of a round;
#  - blocks and seconds from a round's first block to its reward transaction mined.
# The keeper polls 3 times per block (POLL_MS=333 against 1 s blocks, as the default 4 s poll does against
# 12 s mainnet blocks).
#   ./x bench chain   or   ROUNDS=5 POLL_MS=333 bash scripts/bench.d/chain.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
ROUNDS=${ROUNDS:-3}
POLL_MS=${POLL_MS:-333}
cargo build -q --release --locked -p edge-agent
BIN=${CARGO_TARGET_DIR:-$PWD/target}/release/edge-agent
W=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$W"; }
trap cleanup EXIT
# shellcheck source=scripts/lib/free-port.sh
. scripts/lib/free-port.sh
PORT=$(free_port)
MPORT=$(free_port)
RPC=http://127.0.0.1:$PORT
rpc() { curl -s -X POST -H 'content-type: application/json' --data "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"$1\",\"params\":$2}" "$RPC" | jq -r .result; }
block() { printf '%d' "$(rpc eth_blockNumber '[]')"; }
div() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
metric() { curl -s "127.0.0.1:$MPORT/metrics" | awk -v n="$1" '$1 == n { print $2 }'; }
# waits for the first block of the next round (+ $1 blocks)
round_start() {
  local b; b=$(block)
  local want=$(( (b / 20 + 1) * 20 + ${1:-0} ))
  while [ "$(block)" -lt "$want" ]; do sleep 0.2; done
}

"$BIN" devnet --dir "$W/net" --port "$PORT" --block-time 1 --json >"$W/devnet.json" 2>"$W/devnet.log" & pids+=($!)
for _ in $(seq 600); do grep -q '^}' "$W/devnet.json" 2>/dev/null && break; sleep 0.1; done
grep -q '^}' "$W/devnet.json" || { cat "$W/devnet.log" >&2; echo "devnet did not start" >&2; exit 1; }
T=(-c "$W/net/transcoder.toml")
D=(-c "$W/net/delegator.toml")
TA=$(jq -r '.accounts[] | select(.name == "transcoder") | .address' "$W/devnet.json")

echo "setting up: transcoder bonded and registered, delegator bonded to it" >&2
round_start 1
"$BIN" round init "${T[@]}" >/dev/null
"$BIN" bond 500 --to self "${T[@]}" >/dev/null
"$BIN" transcoder register --reward-cut 10 --fee-share 50 --price 1gwei "${T[@]}" >/dev/null
"$BIN" bond 300 --to "$TA" "${D[@]}" >/dev/null

EDGE_AGENT__INGEST__LISTEN=127.0.0.1:$MPORT EDGE_AGENT__CHAIN__KEEPER__POLL_MS=$POLL_MS \
  EDGE_AGENT__CHAIN__KEEPER__INITIALIZE_ROUND=true EDGE_AGENT__CHAIN__KEEPER__BLOCK_TIME_S=1 \
  "$BIN" run "${T[@]}" >"$W/daemon.log" 2>&1 & pids+=($!)
for _ in $(seq 300); do [ "$(metric edge_agent_chain_connected)" = 1 ] && break; sleep 0.1; done
[ "$(metric edge_agent_chain_connected)" = 1 ] || { tail -20 "$W/daemon.log" >&2; echo "daemon did not connect" >&2; exit 1; }

# whole rounds: from a round's first block to the first block ROUNDS rounds later
round_start 0
c0=$(metric edge_agent_chain_rpc_requests_total); b0=$(block); first_round=$((b0 / 20))
idle=()
for r in $(seq "$ROUNDS"); do
  # idle stretch of this round: blocks 6..18 (initialization and reward are done by block 2 or 3)
  want=$(( (first_round + r - 1) * 20 + 6 ))
  while [ "$(block)" -lt "$want" ]; do sleep 0.1; done
  ci=$(metric edge_agent_chain_rpc_requests_total); bi=$(block)
  while [ "$(block)" -lt $((want + 12)) ]; do sleep 0.1; done
  ce=$(metric edge_agent_chain_rpc_requests_total); be=$(block)
  idle+=("$(div "$((ce - ci))" "$((be - bi))")")
  round_start 0
done
c1=$(metric edge_agent_chain_rpc_requests_total); b1=$(block)

topic=$(printf '0x%064s' "${TA#0x}" | tr ' ' 0)
bm=$(jq -r .bondingManager "$W/net/deployment.json")
# Reward(address indexed transcoder, uint256 amount)
RT=0x$(printf 'Reward(address,uint256)' | "$PWD/contracts/node_modules/@foundry-rs/cast-linux-amd64/bin/cast" keccak | sed 's/^0x//')
rewards=$(curl -s -X POST -H 'content-type: application/json' --data "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"eth_getLogs\",\"params\":[{\"fromBlock\":\"0x$(printf %x "$b0")\",\"toBlock\":\"0x$(printf %x "$b1")\",\"address\":\"$bm\",\"topics\":[\"$RT\",\"$topic\"]}]}" "$RPC" | jq -r '.result[].blockNumber')
lat_blocks=(); lat_s=()
for hb in $rewards; do
  b=$(printf '%d' "$hb"); start=$(( b / 20 * 20 ))
  t0=$(printf '%d' "$(curl -s -X POST -H 'content-type: application/json' --data "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"eth_getBlockByNumber\",\"params\":[\"0x$(printf %x $start)\",false]}" "$RPC" | jq -r .result.timestamp)")
  ts=$(printf '%d' "$(curl -s -X POST -H 'content-type: application/json' --data "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"eth_getBlockByNumber\",\"params\":[\"$hb\",false]}" "$RPC" | jq -r .result.timestamp)")
  lat_blocks+=($((b - start))); lat_s+=($((ts - t0)))
done
failed=$(metric edge_agent_chain_failed_transactions_total)
sent=$(metric edge_agent_chain_rewards_sent_total)
echo "chain keeper, ${ROUNDS} rounds of 20 x 1 s blocks, poll ${POLL_MS} ms:"
echo "  RPC requests per block, whole rounds (init + reward included): $(div "$((c1 - c0))" "$((b1 - b0))")  ($((c1 - c0)) requests over $((b1 - b0)) blocks)"
echo "  RPC requests per block, idle stretch of each round: ${idle[*]}"
echo "  reward mined, blocks after the round's first block: ${lat_blocks[*]:-none}  (seconds: ${lat_s[*]:-none})"
echo "  rewards sent ${sent}, failed automatic transactions ${failed}"
