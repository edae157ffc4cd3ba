#!/usr/bin/env bash
# Configures and builds iotstream into build/ (or $IOTSTREAM_BUILD_DIR). Used by both README
# commands; safe to run repeatedly (incremental). IOTSTREAM_BUILD_TARGET builds one target
# instead of all (scripts/sanitize.sh: iotstream_gtests); IOTSTREAM_CMAKE_ARGS go to cmake.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build_dir=${IOTSTREAM_BUILD_DIR:-$root/build}
cmake -S "$root" -B "$build_dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DIOTSTREAM_DEVELOPER=ON \
      -DPython3_EXECUTABLE=/usr/bin/python3 ${IOTSTREAM_CMAKE_ARGS:-} > "$build_dir.configure.log" 2>&1 \
  || { cat "$build_dir.configure.log"; exit 1; }
target=${IOTSTREAM_BUILD_TARGET:-all}
echo "building iotstream ($target) in $build_dir (log: $build_dir.build.log)"
cmake --build "$build_dir" -j"$(nproc)" --target "$target" > "$build_dir.build.log" 2>&1 \
  || { tail -n 60 "$build_dir.build.log"; echo "build failed (full log: $build_dir.build.log)"; exit 1; }

# Make `import iotstream` work for Debian's /usr/bin/python3 (notebooks included): a .pth file
# in its site-packages points at the build tree's package. `pip install ./bindings` is the
# alternative that copies it (bindings/README.md).
if [ -d "$build_dir/python/iotstream" ] && [ -x /usr/bin/python3 ] && [ "$(id -u)" -eq 0 ]; then
  site=$(/usr/bin/python3 -c 'import site; print(site.getsitepackages()[0])')
  mkdir -p "$site" && echo "$build_dir/python" > "$site/iotstream-build-tree.pth"
fi
