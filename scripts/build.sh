#!/usr/bin/env bash
# Configures and builds iotstream into build/ (or $IOTSTREAM_BUILD_DIR). Used by both README
# commands; safe to run repeatedly (incremental).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build_dir=${IOTSTREAM_BUILD_DIR:-$root/build}
cmake -S "$root" -B "$build_dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DIOTSTREAM_DEVELOPER=ON \
      -DPython3_EXECUTABLE=/usr/bin/python3 ${IOTSTREAM_CMAKE_ARGS:-} > "$build_dir.configure.log" 2>&1 \
  || { cat "$build_dir.configure.log"; exit 1; }
cmake --build "$build_dir" -j"$(nproc)"
