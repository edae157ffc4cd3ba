#!/usr/bin/env bash
# The public headers are C99: compile a C file including both with strict flags.
set -euo pipefail
src_dir="$1"; out_dir="$2"
for compiler in cc gcc clang; do command -v "$compiler" >/dev/null && break; done
"$compiler" -std=c99 -Wall -Wextra -Werror -pedantic -I"$src_dir/core/include" \
  -c "$src_dir/tests/abi/c99_headers.c" -o "$out_dir/c99_headers.o"
echo "ok: public headers compile as C99 with $compiler"
