#!/usr/bin/env bash
# README command 2: installs what is missing, builds, and runs every test (GoogleTest, shell and
# pytest suites, all through ctest). Extra arguments go to ctest (e.g. -R window).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/install-deps.sh"
"$root/scripts/build.sh"
build_dir=${IOTSTREAM_BUILD_DIR:-$root/build}
cd "$build_dir"
ctest --output-on-failure --timeout 600 -j2 "$@"
