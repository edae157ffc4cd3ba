#!/usr/bin/env bash
# scripts/bench-gateway.sh [BUILD_DIR] [SECONDS]
#
# Ingestion through the device gateway. HTTP, measured with wrk (Debian's): an iotstream-host
# gateway on its embedded broker, 1000 devices sharing one token with limits far above the
# offered load, wrk on 2 threads / 64 keep-alive connections posting (a) one reading per request
# and (b) 100-reading JSON arrays. MQTT: the same gateway subscribed (--mqtt start: a mosquitto
# of its own on loopback) and `iotstream-host devices` (libmosquitto, 2 connections, 1000
# devices, as fast as it can) publishing one reading per message at QoS 0 and QoS 1. Prints one
# markdown row per case: requests (messages)/s and accepted readings/s (from the gateway's own
# counters, so refused readings do not count).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${1:-$here/build}"
seconds="${2:-10}"
command -v wrk >/dev/null || { echo "bench-gateway: wrk is not installed (apt-get install wrk)"; exit 1; }
work=$(mktemp -d)
trap 'kill "$gateway" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"' EXIT

echo "bench-token-0123456789abcdef" > "$work/token"
"$build/host_example/iotstream-host" gateway --listen 127.0.0.1:0 --shared-token-file "$work/token" \
  --device-rate 1000000 --device-burst 1000000 --max-connections 4096 \
  --mqtt start --mqtt-qos 1 --mqtt-clients "${MQTT_CLIENTS:-2}" > "$work/gateway.log" 2>&1 &
gateway=$!
for _ in $(seq 100); do grep -q "listening on" "$work/gateway.log" && break; sleep 0.1; done
url=$(grep -o 'http://[0-9.:]*' "$work/gateway.log" | head -1)
[ -n "$url" ] || { cat "$work/gateway.log"; exit 1; }
mqtt=$(sed -n 's/^mqtt: subscribing to .* on \([0-9.:]*\) .*/\1/p' "$work/gateway.log" | head -1)
[ -n "$mqtt" ] || { cat "$work/gateway.log"; exit 1; }

accepted() { curl -s "$url/v1/gateway/stats" | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["ingest"]["accepted"])'; }
mqtt_stat() { curl -s "$url/v1/gateway/stats" | /usr/bin/python3 -c "import json,sys; print(json.load(sys.stdin)['mqtt']['$1'])"; }

# $1: readings per request. Each request is a random one of 1000 devices (sensor_id = device id).
bench() {
  cat > "$work/post.lua" <<LUA
local n = $1
wrk.method = "POST"
local bodies = {}
for d = 1, 1000 do
  local one = '{"sensor_id":"dev_' .. d .. '","data":{"temperature":21.5,"humidity":40.1,"pressure":1013.2}}'
  local body = one
  if n > 1 then body = "[" .. string.rep(one, n, ",") .. "]" end
  bodies[d] = body
end
request = function()
  local d = math.random(1000)
  -- wrk.format's headers replace wrk.headers: give them all.
  return wrk.format(nil, "/v1/readings", {["X-Device-Id"] = "dev_" .. d, ["Content-Type"] = "application/json",
                    ["Authorization"] = "Bearer bench-token-0123456789abcdef"}, bodies[d])
end
LUA
  local before after out rps
  before=$(accepted)
  out=$(wrk -t2 -c64 -d"${seconds}s" --latency -s "$work/post.lua" "$url/v1/readings")
  after=$(accepted)
  [ "$after" -gt "$before" ] || { echo "bench-gateway: no reading was accepted" >&2; exit 1; }
  rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
  p99=$(echo "$out" | awk '$1 == "99%" {print $2}')
  non2xx=$(echo "$out" | awk '/Non-2xx/ {print $NF}')
  printf '| HTTP, %s reading(s)/request | %s | %s | %s | %s |\n' "$1" "$rps" \
    "$(( (after - before) / seconds ))" "$p99" "${non2xx:-0}"
}

echo "| gateway case (HTTP: wrk -t2 -c64; MQTT: 2 connections; ${seconds}s) | requests or messages/s | accepted readings/s | p99 latency | non-2xx (HTTP) |"
echo "|---|---|---|---|---|"
bench 1
bench 100

# $1: QoS of the devices' messages (the gateway subscribes at QoS 1, so QoS 1 messages are
# acknowledged after acceptance); $2: readings per message (a JSON array when > 1). Accepted
# readings/s over the devices' run, from the gateway.
bench_mqtt() {
  local before after messages_before messages_after
  before=$(accepted)
  messages_before=$(mqtt_stat messages)
  "$build/host_example/iotstream-host" devices --via mqtt --mqtt "$mqtt" --mqtt-qos "$1" --batch "$2" --rate 0 \
    --duration "$seconds" --sensors 1000 --threads 2 --summary-json "$work/devices.json" > "$work/devices.log" 2>&1 \
    || { cat "$work/devices.log" >&2; exit 1; }
  after=$(accepted)
  messages_after=$(mqtt_stat messages)
  [ "$after" -gt "$before" ] || { echo "bench-gateway: no MQTT reading was accepted" >&2; exit 1; }
  printf '| MQTT QoS %s, %s reading(s)/message | %s | %s | - | - |\n' "$1" "$2" \
    "$(( (messages_after - messages_before) / seconds ))" "$(( (after - before) / seconds ))"
  # What the broker still holds drains before the next case.
  local last=-1 now
  for _ in $(seq 60); do now=$(mqtt_stat messages); [ "$now" = "$last" ] && break; last=$now; sleep 1; done
}
bench_mqtt 0 1
bench_mqtt 1 1
bench_mqtt 0 10
bench_mqtt 1 10
