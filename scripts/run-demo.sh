#!/usr/bin/env bash
# README command 1: installs what is missing, builds, and runs the main job: the IoT pipeline
# (load generator -> Kafka -> aggregation, windows, anomaly rules -> output topics) on the
# embedded broker. Arguments go to iotstream-host (try --help). Without arguments: one minute
# at 20K readings/s from 100K sensors, with 10-second windows so windows close during the run.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/install-deps.sh"
"$root/scripts/build.sh"
build_dir=${IOTSTREAM_BUILD_DIR:-$root/build}
[ $# -gt 0 ] || set -- --duration 60 --window-size 10 --grace 2
exec "$build_dir/host_example/iotstream-host" --library "$build_dir/core/libiotstream.so" \
     --plugins "$build_dir/plugins" "$@"
