#!/usr/bin/env bash
# Builds the libFuzzer targets of tests/fuzz with clang, AddressSanitizer and
# UndefinedBehaviorSanitizer into build-fuzz/, and runs each for IOTSTREAM_FUZZ_SECONDS
# (default 60) from its seed corpus. A crash, leak, sanitizer report or timeout fails the run
# and leaves the input in build-fuzz/findings/<target>/: copy it to
# tests/fuzz/regressions/<target>/ with the fix, and every ctest run replays it.
# IOTSTREAM_FUZZ_RUNS=N with IOTSTREAM_FUZZ_SEED=S makes the run repeatable (N inputs from
# seed S, or IOTSTREAM_FUZZ_RUNS_<target>; the time limit still caps it): CI uses that, so a CI run fails only on a change of
# the code, not on the luck of the draw. Without them each run explores afresh.
# Usage: scripts/fuzz.sh [target ...]   (default: all of them)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${IOTSTREAM_FUZZ_BUILD_DIR:-$root/build-fuzz}
seconds=${IOTSTREAM_FUZZ_SECONDS:-60}
seed=()
[ -n "${IOTSTREAM_FUZZ_SEED:-}" ] && seed=(-seed="$IOTSTREAM_FUZZ_SEED")
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(fuzz_decoder fuzz_pipeline_config fuzz_plugin_descriptor fuzz_ingest)

mkdir -p "$build"
CC=clang CXX=clang++ cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DIOTSTREAM_FUZZ=ON \
    -DIOTSTREAM_SANITIZE=address,undefined -DIOTSTREAM_BUILD_PYTHON=OFF -DIOTSTREAM_BUILD_BENCHMARKS=OFF \
    ${IOTSTREAM_CMAKE_ARGS:-} > "$build.configure.log" 2>&1 || { cat "$build.configure.log"; exit 1; }
echo "fuzz: building ${targets[*]} in $build (log: $build.build.log)"
cmake --build "$build" -j"$(nproc)" --target "${targets[@]}" > "$build.build.log" 2>&1 \
  || { tail -n 60 "$build.build.log"; echo "fuzz build failed"; exit 1; }

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
status=0
for target in "${targets[@]}"; do
  # libFuzzer adds what it finds to the first corpus folder: work on a copy, keep the repo's seeds.
  work="$build/corpus/$target" findings="$build/findings/$target"
  mkdir -p "$work" "$findings"
  cp -n "$root/tests/fuzz/corpus/$target/"* "$work/" 2>/dev/null || true
  [ -d "$root/tests/fuzz/regressions/$target" ] && cp -n "$root/tests/fuzz/regressions/$target/"* "$work/" 2>/dev/null || true
  # IOTSTREAM_FUZZ_RUNS_<target> overrides the count for a slow target (fuzz_ingest runs a
  # producer per input: about 500 inputs/s against 25,000-50,000 for the parsers).
  runs_for_target=IOTSTREAM_FUZZ_RUNS_$target
  runs=${!runs_for_target:-${IOTSTREAM_FUZZ_RUNS:-}}
  repeatable=("${seed[@]}")
  [ -n "$runs" ] && repeatable+=(-runs="$runs")
  echo "fuzz: $target for ${seconds}s ${repeatable[*]}"
  if "$build/tests/fuzz/$target" "$work" -max_total_time="$seconds" "${repeatable[@]}" -timeout=10 -rss_limit_mb=2048 \
        -max_len=70000 -print_final_stats=1 -artifact_prefix="$findings/" > "$build/$target.log" 2>&1; then
    grep -E "^stat::(number_of_executed_units|new_units_added)" "$build/$target.log" | tr '\n' ' '; echo
  else
    status=1
    # The report from its first line (what went wrong and the stack), then the reproducer.
    sed -n -E '/^==[0-9]+==ERROR|runtime error:|^fuzz_[a-z_]+: |deadly signal|ERROR: libFuzzer/,+45p' "$build/$target.log" \
      | grep -v -E '^ +0x[0-9a-f]+: ' | head -n 60
    tail -n 8 "$build/$target.log"
    echo "fuzz: $target FAILED; reproducer(s): $(ls "$findings")"
  fi
done
exit $status
