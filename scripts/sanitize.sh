#!/usr/bin/env bash
# Builds the GoogleTest suites (target iotstream_gtests: the core, the bundled plugins, every
# gtest binary; not the host, the bindings or the benchmarks) with AddressSanitizer +
# UndefinedBehaviorSanitizer (or the sanitizers in $IOTSTREAM_SANITIZE, e.g. "thread") into
# build-<name>/ and runs them (label gtest) under them; a report fails the run
# (-fno-sanitize-recover; ThreadSanitizer: halt_on_error=1). Extra arguments go to ctest (e.g.
# -R Pipeline; -L gtest_threaded, the ThreadSanitizer subset). Thread builds read the
# suppressions in tests/tsan.supp (races inside uninstrumented librdkafka only). The Python and
# shell suites run in the plain build. docs/testing.md says what CI runs.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
sanitize=${IOTSTREAM_SANITIZE:-address,undefined}
name=$(echo "$sanitize" | tr ',' '-')
export IOTSTREAM_BUILD_DIR=${IOTSTREAM_SANITIZE_BUILD_DIR:-$root/build-$name}
export IOTSTREAM_CMAKE_ARGS="${IOTSTREAM_CMAKE_ARGS:-} -DIOTSTREAM_SANITIZE=$sanitize -DIOTSTREAM_BUILD_PYTHON=OFF -DIOTSTREAM_BUILD_BENCHMARKS=OFF"
export IOTSTREAM_BUILD_TARGET=${IOTSTREAM_BUILD_TARGET:-iotstream_gtests}
"$root/scripts/build.sh"
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:strict_string_checks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export TSAN_OPTIONS=${TSAN_OPTIONS:-suppressions=$root/tests/tsan.supp:halt_on_error=1:second_deadlock_stack=1}
cd "$IOTSTREAM_BUILD_DIR"
ctest --output-on-failure --timeout 900 -j2 -L gtest "$@"
