#!/usr/bin/env bash
# Independent-client check of a deployed set: drives a short Bond -> Job -> Claim flow with `cast send`, then
# calls EVERY view/pure function of every contract with `cast call` and checks each value. Fails when the ABI
# has a view function that this script does not check.
#
#   contracts/check-views.sh RPC_URL DEPLOYMENT_JSON
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
RPC="$1"; DEP="$2"
CAST="$here/node_modules/@foundry-rs/cast-linux-amd64/bin/cast"
addr() { jq -r ".$1" "$DEP"; }
CONTROLLER=$(addr controller); TOKEN=$(addr token); ROUNDS=$(addr roundsManager); BONDING=$(addr bondingManager)
MINTER=$(addr minter); JOBS=$(addr jobsManager); VERIFIER=$(addr verifier); DEPLOYER=$(addr deployer)
SERVICE=$(addr serviceRegistry)
# anvil's public dev keys 1 (transcoder) and 2 (broadcaster)
TKEY=0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d
BKEY=0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a
T=$("$CAST" wallet address --private-key $TKEY)
B=$("$CAST" wallet address --private-key $BKEY)

COV=$(mktemp); trap 'rm -f "$COV"' EXIT  # calls run in $(...) subshells: record coverage in a file
fail() { echo "check-views: FAIL: $*" >&2; exit 1; }
send() { local key="$1"; shift; "$CAST" send -q --rpc-url "$RPC" --private-key "$key" "$@" >/dev/null; }
mine() { "$CAST" rpc --rpc-url "$RPC" anvil_mine "$(printf '0x%x' "$1")" >/dev/null; }
block() { "$CAST" block-number --rpc-url "$RPC"; }
# call CONTRACT_NAME ADDRESS SIGNATURE [ARGS...]: prints the decoded result, records the coverage
call() {
  local name="$1" a="$2" sig="$3"; shift 3
  echo "$name.${sig%%)*})" >> "$COV"
  "$CAST" call --rpc-url "$RPC" "$a" "$sig" "$@" | sed -E 's/ \[[0-9.e]+\]$//'
}
# expect ACTUAL WANT WHAT
expect() { [ "$1" = "$2" ] || fail "$3: got '$1', want '$2'"; echo "ok  $3 = $1"; }
lower() { tr 'A-F' 'a-f' <<<"$1"; }

# ---------------------------------------------------------------- a short flow so the views have content
RL=$(call RoundsManager "$ROUNDS" "roundLength()(uint256)")
next_round() { local b; b=$(block); mine $(( RL - b % RL )); }
next_round
send $TKEY "$ROUNDS" "initializeRound()"
send $TKEY "$TOKEN" "faucet()"
send $TKEY "$TOKEN" "approve(address,uint256)" "$BONDING" 1000ether
send $TKEY "$BONDING" "bond(uint256,address)" 1000ether "$T"
send $TKEY "$BONDING" "transcoder(uint256,uint256,uint256)" 100000 500000 1gwei
send $TKEY "$SERVICE" "setServiceURI(string)" "http://127.0.0.1:8935"
next_round
send $TKEY "$ROUNDS" "initializeRound()"
send $TKEY "$BONDING" "reward()"
send $BKEY "$JOBS" "deposit()" --value 1ether
END=$(( $(block) + 1000 ))
send $BKEY "$JOBS" "job(string,string,uint256,uint256)" "stream-1" "49d54ea993c717e7" 1gwei "$END"
send $TKEY "$JOBS" "claimWork(uint256,uint256[2],bytes32)" 0 "[0,9]" 0x1111111111111111111111111111111111111111111111111111111111111111
mine 2
ROUND=$(call RoundsManager "$ROUNDS" "currentRound()(uint256)")
NOW=$(block)

# ---------------------------------------------------------------- Controller
expect "$(lower "$(call Controller "$CONTROLLER" "owner()(address)")")" "$(lower "$DEPLOYER")" "Controller.owner"
expect "$(call Controller "$CONTROLLER" "paused()(bool)")" false "Controller.paused"
for n in Token RoundsManager BondingManager Minter JobsManager Verifier ServiceRegistry; do
  want=$(jq -r ".$(sed -E 's/^./\L&/' <<<"$n")" "$DEP")
  got=$(call Controller "$CONTROLLER" "getContract(bytes32)(address)" "$("$CAST" keccak "$n")")
  expect "$(lower "$got")" "$(lower "$want")" "Controller.getContract($n)"
done
for c in Token RoundsManager BondingManager Minter JobsManager Verifier ServiceRegistry; do
  a=$(jq -r ".$(sed -E 's/^./\L&/' <<<"$c")" "$DEP")
  expect "$(lower "$(call "$c" "$a" "controller()(address)")")" "$(lower "$CONTROLLER")" "$c.controller"
done

# ---------------------------------------------------------------- Token
expect "$(call Token "$TOKEN" "name()(string)")" '"Edge Transcoder Token"' "Token.name"
expect "$(call Token "$TOKEN" "symbol()(string)")" '"ETT"' "Token.symbol"
expect "$(call Token "$TOKEN" "decimals()(uint8)")" 18 "Token.decimals"
expect "$(call Token "$TOKEN" "isDevChain()(bool)")" true "Token.isDevChain"
expect "$(call Token "$TOKEN" "faucetAmount()(uint256)")" 1000000000000000000000 "Token.faucetAmount"
expect "$(call Token "$TOKEN" "faucetWait()(uint256)")" 0 "Token.faucetWait"
SUPPLY=$(call Token "$TOKEN" "totalSupply()(uint256)")
MINTED=$(call Minter "$MINTER" "currentMintedTokens()(uint256)")
[ "$MINTED" != 0 ] || fail "reward minted nothing"
expect "$SUPPLY" "$(python3 -c "print(10_000_000*10**18 + 1000*10**18 + $MINTED)")" "Token.totalSupply = genesis + faucet + reward"
expect "$(call Token "$TOKEN" "balanceOf(address)(uint256)" "$BONDING")" "$(python3 -c "print(1000*10**18 + $MINTED)")" "Token.balanceOf(BondingManager)"
expect "$(call Token "$TOKEN" "allowance(address,address)(uint256)" "$T" "$BONDING")" 0 "Token.allowance spent"
nfb=$(call Token "$TOKEN" "nextFaucetBlock(address)(uint256)" "$T"); [ "$nfb" -gt 0 ] || fail "nextFaucetBlock"; echo "ok  Token.nextFaucetBlock = $nfb"

# ---------------------------------------------------------------- RoundsManager
expect "$RL" 20 "RoundsManager.roundLength"
expect "$(call RoundsManager "$ROUNDS" "roundLockAmount()(uint256)")" 100000 "RoundsManager.roundLockAmount"
expect "$(call RoundsManager "$ROUNDS" "PERC_DIVISOR()(uint256)")" 1000000 "RoundsManager.PERC_DIVISOR"
expect "$(call RoundsManager "$ROUNDS" "blockNum()(uint256)")" "$NOW" "RoundsManager.blockNum"
expect "$ROUND" $(( NOW / RL )) "RoundsManager.currentRound"
expect "$(call RoundsManager "$ROUNDS" "currentRoundStartBlock()(uint256)")" $(( NOW / RL * RL )) "RoundsManager.currentRoundStartBlock"
expect "$(call RoundsManager "$ROUNDS" "lastInitializedRound()(uint256)")" "$ROUND" "RoundsManager.lastInitializedRound"
expect "$(call RoundsManager "$ROUNDS" "anyRoundInitialized()(bool)")" true "RoundsManager.anyRoundInitialized"
expect "$(call RoundsManager "$ROUNDS" "currentRoundInitialized()(bool)")" true "RoundsManager.currentRoundInitialized"
locked=$([ $(( NOW % RL )) -ge 18 ] && echo true || echo false)
expect "$(call RoundsManager "$ROUNDS" "currentRoundLocked()(bool)")" "$locked" "RoundsManager.currentRoundLocked"
bh=$(call RoundsManager "$ROUNDS" "blockHash(uint256)(bytes32)" $(( NOW - 1 )))
expect "$bh" "$("$CAST" block --rpc-url "$RPC" $(( NOW - 1 )) -f hash)" "RoundsManager.blockHash(n-1)"

# ---------------------------------------------------------------- Minter
expect "$(call Minter "$MINTER" "PERC_DIVISOR()(uint256)")" 1000000 "Minter.PERC_DIVISOR"
expect "$(call Minter "$MINTER" "inflationChange()(uint256)")" 3 "Minter.inflationChange"
expect "$(call Minter "$MINTER" "targetBondingRate()(uint256)")" 500000 "Minter.targetBondingRate"
expect "$(call Minter "$MINTER" "inflation()(uint256)")" 143 "Minter.inflation (137 + 2 rounds x 3, below target)"
MINTABLE=$(call Minter "$MINTER" "currentMintableTokens()(uint256)")
expect "$MINTED" "$MINTABLE" "Minter.currentMintedTokens (sole active transcoder)"
expect "$(call Minter "$MINTER" "currentBondingRate()(uint256)")" "$(python3 -c "print((1000*10**18 + $MINTED)*10**6 // $SUPPLY)")" "Minter.currentBondingRate"

# ---------------------------------------------------------------- BondingManager
STAKE=$(python3 -c "print(1000*10**18 + $MINTED)")
expect "$(call BondingManager "$BONDING" "PERC_DIVISOR()(uint256)")" 1000000 "BondingManager.PERC_DIVISOR"
expect "$(call BondingManager "$BONDING" "unbondingPeriod()(uint256)")" 2 "BondingManager.unbondingPeriod"
expect "$(call BondingManager "$BONDING" "numTranscoders()(uint256)")" 20 "BondingManager.numTranscoders"
expect "$(call BondingManager "$BONDING" "numActiveTranscoders()(uint256)")" 10 "BondingManager.numActiveTranscoders"
expect "$(call BondingManager "$BONDING" "getTranscoder(address)(uint256,uint256,uint256,uint256,uint256)" "$T" | paste -sd,)" \
  "100000,500000,1000000000,$ROUND,$STAKE" "BondingManager.getTranscoder"
expect "$(call BondingManager "$BONDING" "getDelegator(address)(uint256,uint256,address,uint256,uint256,uint256,uint256)" "$T" | paste -sd, | tr A-F a-f)" \
  "1000000000000000000000,0,$(lower "$T"),$(( ROUND )),$(( ROUND - 1 )),0,0" "BondingManager.getDelegator"
expect "$(call BondingManager "$BONDING" "delegatorStatus(address)(uint8)" "$T")" 1 "BondingManager.delegatorStatus = Bonded"
expect "$(call BondingManager "$BONDING" "getEarningsPool(address,uint256)(uint256,uint256,uint256,uint256,uint256,uint256)" "$T" "$ROUND" | paste -sd,)" \
  "$(python3 -c "m=$MINTED; c=m*100000//10**6; print(f'{m-c},0,{c},0,{1000*10**18},{1000*10**18}')")" "BondingManager.getEarningsPool"
expect "$(call BondingManager "$BONDING" "pendingEarnings(address,uint256)(uint256,uint256)" "$T" $(( ROUND - 1 )) | paste -sd,)" \
  "1000000000000000000000,0" "BondingManager.pendingEarnings (nothing before the bond)"
expect "$(call BondingManager "$BONDING" "transcoderTotalStake(address)(uint256)" "$T")" "$STAKE" "BondingManager.transcoderTotalStake"
expect "$(call BondingManager "$BONDING" "activeTranscoderPrice(address,uint256)(uint256)" "$T" "$ROUND")" 1000000000 "BondingManager.activeTranscoderPrice"
expect "$(call BondingManager "$BONDING" "isRegisteredTranscoder(address)(bool)" "$T")" true "BondingManager.isRegisteredTranscoder"
expect "$(call BondingManager "$BONDING" "isRegisteredTranscoder(address)(bool)" "$B")" false "BondingManager.isRegisteredTranscoder(broadcaster)"
expect "$(call BondingManager "$BONDING" "isActiveTranscoder(address,uint256)(bool)" "$T" "$ROUND")" true "BondingManager.isActiveTranscoder"
expect "$(lower "$(call BondingManager "$BONDING" "getActiveTranscoders(uint256)(address[])" "$ROUND")")" "[$(lower "$T")]" "BondingManager.getActiveTranscoders"
expect "$(call BondingManager "$BONDING" "getTotalActiveStake(uint256)(uint256)" "$ROUND")" 1000000000000000000000 "BondingManager.getTotalActiveStake"
expect "$(call BondingManager "$BONDING" "getTotalBonded()(uint256)")" "$STAKE" "BondingManager.getTotalBonded"
expect "$(call BondingManager "$BONDING" "getTranscoderPoolSize()(uint256)")" 1 "BondingManager.getTranscoderPoolSize"
expect "$(lower "$(call BondingManager "$BONDING" "getFirstTranscoderInPool()(address)")")" "$(lower "$T")" "BondingManager.getFirstTranscoderInPool"
expect "$(call BondingManager "$BONDING" "getNextTranscoderInPool(address)(address)" "$T")" 0x0000000000000000000000000000000000000000 "BondingManager.getNextTranscoderInPool"
expect "$(lower "$(call BondingManager "$BONDING" "electActiveTranscoder(uint256,bytes32,uint256)(address,uint256)" 1gwei "$bh" "$ROUND" | paste -sd,)")" "$(lower "$T"),1000000000" "BondingManager.electActiveTranscoder"
expect "$(call BondingManager "$BONDING" "electActiveTranscoder(uint256,bytes32,uint256)(address,uint256)" 999999999 "$bh" "$ROUND" | paste -sd,)" 0x0000000000000000000000000000000000000000,0 "BondingManager.electActiveTranscoder(too cheap)"

# ---------------------------------------------------------------- JobsManager
expect "$(call JobsManager "$JOBS" "PERC_DIVISOR()(uint256)")" 1000000 "JobsManager.PERC_DIVISOR"
expect "$(call JobsManager "$JOBS" "verificationRate()(uint256)")" 2 "JobsManager.verificationRate"
expect "$(call JobsManager "$JOBS" "verificationPeriod()(uint256)")" 30 "JobsManager.verificationPeriod"
expect "$(call JobsManager "$JOBS" "verificationSlashingPeriod()(uint256)")" 30 "JobsManager.verificationSlashingPeriod"
expect "$(call JobsManager "$JOBS" "failedVerificationSlashAmount()(uint256)")" 1 "JobsManager.failedVerificationSlashAmount"
expect "$(call JobsManager "$JOBS" "missedVerificationSlashAmount()(uint256)")" 5000 "JobsManager.missedVerificationSlashAmount"
expect "$(call JobsManager "$JOBS" "doubleClaimSegmentSlashAmount()(uint256)")" 30000 "JobsManager.doubleClaimSegmentSlashAmount"
expect "$(call JobsManager "$JOBS" "finderFee()(uint256)")" 50000 "JobsManager.finderFee"
expect "$(call JobsManager "$JOBS" "numJobs()(uint256)")" 1 "JobsManager.numJobs"
FEES=$(( 10 * 2 * 1000000000 ))
expect "$(call JobsManager "$JOBS" "broadcasters(address)(uint256,uint256)" "$B" | paste -sd,)" "$(python3 -c "print(10**18 - $FEES)"),$END" "JobsManager.broadcasters"
job=$(call JobsManager "$JOBS" "getJob(uint256)(string,string,uint256,address,address,uint256,uint256,uint256,uint256,uint256,uint256)" 0 | paste -sd, | tr A-F a-f)
JOBBLOCK=$(( END - 999 )) # mined in the block after the one END was computed from
expect "$job" "\"stream-1\",\"49d54ea993c717e7\",1000000000,$(lower "$B"),$(lower "$T"),$ROUND,$JOBBLOCK,$END,1000000000,$FEES,1" "JobsManager.getJob"
claim=$(call JobsManager "$JOBS" "getClaim(uint256,uint256)(uint256,uint256,bytes32,uint256,uint256,uint256,uint8)" 0 0 | paste -sd,)
CB=$(cut -d, -f4 <<<"$claim")
expect "$claim" "0,9,0x1111111111111111111111111111111111111111111111111111111111111111,$CB,$(( CB + 30 )),$(( CB + 60 )),1" "JobsManager.getClaim"
expect "$(call JobsManager "$JOBS" "isVerificationRequested(uint256,uint256,uint256)(bool,bool)" 0 0 3 | paste -sd,)" "false,false" "JobsManager.isVerificationRequested"
# challenge rule recomputed here from the chain's block hash: keccak256(uint256 cb+1, bytes32 hash, uint256 seg) % rate == 0
h1=$("$CAST" block --rpc-url "$RPC" $(( CB + 1 )) -f hash)
for seg in 0 1 2 3 4 5 6 7 8 9; do
  k=$("$CAST" keccak "$("$CAST" abi-encode --packed "f(uint256,bytes32,uint256)" $(( CB + 1 )) "$h1" $seg)")
  want=$(python3 -c "print('true' if int('$k',16) % 2 == 0 else 'false')")
  expect "$(call JobsManager "$JOBS" "isChallenged(uint256,uint256)(bool)" "$CB" $seg)" "$want" "JobsManager.isChallenged(seg $seg)"
done
DH=$("$CAST" keccak 0x00)
expect "$(call JobsManager "$JOBS" "segmentHash(string,uint256,bytes32)(bytes32)" stream-1 7 "$DH")" \
  "$("$CAST" keccak "$("$CAST" abi-encode --packed "f(string,uint256,bytes32)" stream-1 7 "$DH")")" "JobsManager.segmentHash"
SIG=0x$(printf 'ab%.0s' $(seq 65))
expect "$(call JobsManager "$JOBS" "receiptHash(string,uint256,bytes32,bytes32,bytes)(bytes32)" stream-1 7 "$DH" "$DH" "$SIG")" \
  "$("$CAST" keccak "$("$CAST" abi-encode --packed "f(string,uint256,bytes32,bytes32,bytes)" stream-1 7 "$DH" "$DH" "$SIG")")" "JobsManager.receiptHash"
L0=$("$CAST" keccak 0x01); L1=$("$CAST" keccak 0x02)
ROOT=$(python3 -c "a,b=sorted(['${L0#0x}','${L1#0x}']); print('0x'+a+b)" | xargs "$CAST" keccak)
expect "$(call JobsManager "$JOBS" "verifyReceiptProof(bytes,bytes32,bytes32)(bool)" "$L1" "$ROOT" "$L0")" true "JobsManager.verifyReceiptProof"
expect "$(call JobsManager "$JOBS" "verifyReceiptProof(bytes,bytes32,bytes32)(bool)" "$L1" "$ROOT" "$L1")" false "JobsManager.verifyReceiptProof(wrong leaf)"
expect "$(call JobsManager "$JOBS" "validTranscodingOptions(string)(bool)" 49d54ea9)" true "JobsManager.validTranscodingOptions"
expect "$(call JobsManager "$JOBS" "validTranscodingOptions(string)(bool)" 49d54ea)" false "JobsManager.validTranscodingOptions(7 chars)"

# ---------------------------------------------------------------- Verifier
expect "$(call Verifier "$VERIFIER" "isSolver(address)(bool)" "$DEPLOYER")" true "Verifier.isSolver(deployer)"
expect "$(call Verifier "$VERIFIER" "isSolver(address)(bool)" "$T")" false "Verifier.isSolver(transcoder)"
expect "$(call Verifier "$VERIFIER" "numSolvers()(uint256)")" 1 "Verifier.numSolvers"
expect "$(call Verifier "$VERIFIER" "numRequests()(uint256)")" 0 "Verifier.numRequests"
expect "$(call Verifier "$VERIFIER" "getPrice()(uint256)")" 0 "Verifier.getPrice"
expect "$(call Verifier "$VERIFIER" "MODE_BIT_EXACT()(uint8)")" 0 "Verifier.MODE_BIT_EXACT"
expect "$(call Verifier "$VERIFIER" "MODE_FIDELITY()(uint8)")" 1 "Verifier.MODE_FIDELITY"
expect "$(call Verifier "$VERIFIER" "getRequest(uint256)(uint256,uint256,uint256,bytes32,bool)" 0 | paste -sd,)" \
  "0,0,0,0x0000000000000000000000000000000000000000000000000000000000000000,false" "Verifier.getRequest(none)"

# ---------------------------------------------------------------- ServiceRegistry
expect "$(call ServiceRegistry "$SERVICE" "MAX_SERVICE_URI_LENGTH()(uint256)")" 256 "ServiceRegistry.MAX_SERVICE_URI_LENGTH"
expect "$(call ServiceRegistry "$SERVICE" "getServiceURI(address)(string)" "$T")" '"http://127.0.0.1:8935"' "ServiceRegistry.getServiceURI(transcoder)"
expect "$(call ServiceRegistry "$SERVICE" "getServiceURI(address)(string)" "$B")" '""' "ServiceRegistry.getServiceURI(nothing published)"

# ---------------------------------------------------------------- coverage: every view/pure function of the ABI
missing=0
for c in Controller Token RoundsManager BondingManager Minter JobsManager Verifier ServiceRegistry; do
  while read -r sig; do
    if ! grep -qxF "$c.$sig" "$COV"; then echo "check-views: not checked: $c.$sig" >&2; missing=1; fi
  done < <(jq -r '.abi[] | select(.type=="function" and (.stateMutability=="view" or .stateMutability=="pure"))
                   | "\(.name)(\([.inputs[].type] | join(",")))"' "$here/out/$c.sol/$c.json")
done
[ $missing -eq 0 ] || fail "some view functions are not checked"
echo "check-views: every view function of the 8 contracts answered sane values ($(sort -u "$COV" | wc -l) signatures)"
