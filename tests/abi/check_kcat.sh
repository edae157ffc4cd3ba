#!/usr/bin/env bash
# kcat (a client we did not write) sees a running iotstream-broker: metadata, produce, consume.
set -euo pipefail
broker_bin="$1"
work=$(mktemp -d)
trap 'kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -rf "$work"' EXIT
"$broker_bin" --quiet --topic kcat-test:4 --topic iot-readings:2 --bootstrap-file "$work/bootstrap" > "$work/stdout" &
pid=$!
for _ in $(seq 100); do [ -s "$work/bootstrap" ] && break; sleep 0.1; done
bootstrap=$(cat "$work/bootstrap")
[ "$(head -n1 "$work/stdout")" = "$bootstrap" ] || { echo "FAIL: first line of output is not the bootstrap"; exit 1; }

kcat -b "$bootstrap" -L -m 5 > "$work/metadata"
grep -q 'topic "kcat-test" with 4 partitions' "$work/metadata" || { echo "FAIL: kcat metadata:"; cat "$work/metadata"; exit 1; }
grep -q 'topic "iot-readings" with 2 partitions' "$work/metadata" || { echo "FAIL: kcat metadata:"; cat "$work/metadata"; exit 1; }

printf 'sensor_1:hello\nsensor_2:world\n' | kcat -b "$bootstrap" -P -t kcat-test -K: -m 10
got=$(kcat -b "$bootstrap" -C -t kcat-test -o beginning -e -q -f '%k=%s\n' -m 10 | sort | tr '\n' ' ')
[ "$got" = "sensor_1=hello sensor_2=world " ] || { echo "FAIL: consumed '$got'"; exit 1; }

kill -TERM "$pid"; status=0; wait "$pid" || status=$?
[ "$status" -eq 0 ] || { echo "FAIL: broker exited $status on SIGTERM"; exit 1; }
echo "ok: kcat listed metadata, produced and consumed through iotstream-broker"
