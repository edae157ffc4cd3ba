#!/usr/bin/env bash
# scripts/bench.sh [--short|--full] [run_bench.py options]
#
# Builds iotstream in Release (build-bench/) and runs the benchmark: iotstream against the seed's
# Python, confluent-kafka and raw librdkafka, producer and end-to-end pipeline, plus
# event-to-alert latency and memory per open sensor-window, all on one embedded broker; then
# Gateway ingestion: HTTP with wrk, MQTT QoS 0/1 with iotstream-host devices (scripts/bench-gateway.sh).
# Writes bench-results/results.md, results.json, results.png and gateway.md. --short is the CI smoke run
# (seconds; fails only when a path breaks or loses records). Default: --full.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${IOTSTREAM_BENCH_BUILD_DIR:-$here/build-bench}"
jobs="${IOTSTREAM_BENCH_JOBS:-2}"

cmake -S "$here" -B "$build" -DCMAKE_BUILD_TYPE=Release -DIOTSTREAM_BUILD_BENCHMARKS=ON >/dev/null
cmake --build "$build" -j"$jobs" --target iotstream-bench iotstream-host >/dev/null

# Debian's interpreter: it has kafka-python, confluent-kafka and matplotlib (a pyenv may not).
/usr/bin/python3 "$here/tests/bench/run_bench.py" --build-dir "$build" "$@"

# Ingestion through the gateway: HTTP with wrk, MQTT through a mosquitto of the gateway's own
# (scripts/install-deps.sh installs both).
seconds=10
[[ " $* " == *" --short "* ]] && seconds=2
mkdir -p "$here/bench-results"
"$here/scripts/bench-gateway.sh" "$build" "$seconds" | tee "$here/bench-results/gateway.md"
