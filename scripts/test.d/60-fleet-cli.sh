#!/usr/bin/env bash
# End-to-end check of the operator CLI `edge-fleet` as an operator would use it: one command makes the
# PKI, the broker config is rendered from agent/fleet/broker/, a real mosquitto and a standalone device
# agent run, and list/show/config/cmd/watch are exercised with --json.  (The protocol edge cases are in
# `cargo test -p fleet`.)
set -euo pipefail
cargo build -q --locked -p fleet --bin edge-fleet
BIN=${CARGO_TARGET_DIR:-$PWD/target}/debug/edge-fleet
W=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$W"; }
trap cleanup EXIT
fail() { echo "60-fleet-cli: $*" >&2; for f in "$W"/*.log; do echo "--- $f" >&2; tail -20 "$f" >&2; done; exit 1; }

# shellcheck source=scripts/lib/free-port.sh
. scripts/lib/free-port.sh
PORT=$(free_port)
"$BIN" pki init --dir "$W/pki" --device box-a --device box-b >/dev/null
"$BIN" broker-config --pki "$W/pki" --state "$W/state" --port "$PORT" --bind 127.0.0.1 --user "$(id -un)" --out "$W/broker" >/dev/null
mkdir -p "$W/state"
MOSQ=$(command -v mosquitto || echo /usr/sbin/mosquitto)
"$MOSQ" -c "$W/broker/mosquitto.conf" >"$W/mosquitto.log" 2>&1 & pids+=($!)
for _ in $(seq 100); do (echo >"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break; sleep 0.05; done

for d in box-a box-b; do
  cat >"$W/$d.toml" <<TOML
[fleet]
host = "127.0.0.1"
port = $PORT
ca_file = "$W/pki/ca.pem"
cert_file = "$W/pki/$d.pem"
key_file = "$W/pki/$d.key"
state_dir = "$W/$d-state"
heartbeat_s = 1
telemetry_interval_s = 1
reboot_command = ["true"]
labels = { site = "$d-site" }
TOML
  "$BIN" --log info device --config "$W/$d.toml" >"$W/$d.log" 2>&1 & pids+=($!)
done
export EDGE_FLEET_BROKER=127.0.0.1:$PORT EDGE_FLEET_PKI=$W/pki

ok=
for _ in $(seq 50); do
  n=$("$BIN" --json list | jq '[.[] | select(.online)] | length')
  [ "$n" = 2 ] && ok=1 && break
  sleep 0.2
done
[ -n "$ok" ] || fail "devices did not come online"
"$BIN" --json show box-a | jq -e '.telemetry.system.mem_total_bytes > 0 and .status.state == "online"' >/dev/null || fail "show box-a"
"$BIN" list | grep -q '^box-b .*online' || fail "text list"

# Config rollout by selector reaches exactly the matching box and is reported applied.
out=$("$BIN" --json config set --select label.site=box-a-site --set log_level=debug --set session_limit=3)
echo "$out" | jq -e 'length == 1 and .[0].device == "box-a" and .[0].state == "applied" and .[0].version == 1' >/dev/null || fail "rollout: $out"
"$BIN" --json config get box-b | jq -e '.desired == null' >/dev/null || fail "box-b got a config"
# Invalid config: refused by the CLI before sending; a stale explicit version: refused by the device.
if "$BIN" config set box-a --set session_limit=0 2>/dev/null; then fail "invalid config accepted"; fi
out=$("$BIN" --json config set box-a --set session_limit=2 --version 1 || true)
echo "$out" | jq -e '.[0].state == "refused" and (.[0].error | test("stale"))' >/dev/null || fail "stale: $out"
"$BIN" --json config get box-a | jq -e '.reported.applied_version == 1 and .reported.applied.session_limit == 3' >/dev/null || fail "applied config changed"

# Commands: round trip, idempotent repeat, unknown command is a clean failure (exit 1, error text).
"$BIN" --json cmd box-a ping --id c1 | jq -e '.ok and .duplicate == false' >/dev/null || fail "ping"
"$BIN" --json cmd box-a ping --id c1 | jq -e '.ok and .duplicate == true' >/dev/null || fail "repeat"
"$BIN" --json cmd box-a set_log_level level=info | jq -e '.ok' >/dev/null || fail "set_log_level"
if out=$("$BIN" --json cmd box-a warp); then fail "unknown command succeeded"; fi
echo "$out" | jq -e '(.ok | not) and (.error | test("unknown command"))' >/dev/null || fail "unknown: $out"
if "$BIN" cmd no-such-box ping --timeout 1 2>/dev/null; then fail "command to a missing box succeeded"; fi

# watch: live events within 3 s.
"$BIN" --json watch --duration 3 | jq -se 'map(select(.kind == "telemetry")) | length > 0' >/dev/null || fail "watch"
echo "60-fleet-cli: ok"
