#!/usr/bin/env bash
# Installs the build tree into a fresh prefix, builds tests/package/out_of_tree against it with
# find_package(iotstream), and checks that the installed library loads the plugin it built.
# usage: check_out_of_tree_plugin.sh <cmake> <build dir> <project dir> <plugin source> <version> <cc>
set -euo pipefail
cmake="$1" build="$2" project="$3" source="$4" version="$5" cc="$6"
work=$(mktemp -d "${TMPDIR:-/tmp}/iots-package-test.XXXXXX")
trap 'rm -rf "$work"' EXIT
prefix="$work/prefix"

"$cmake" --install "$build" --prefix "$prefix" > "$work/install.log" || { cat "$work/install.log"; exit 1; }
"$cmake" -S "$project" -B "$work/build" -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_C_COMPILER="$cc" \
  -DIOTSTREAM_EXPECTED_VERSION="$version" -DPLUGIN_SOURCE="$source" -DCMAKE_C_FLAGS="-Wall -Wextra -Werror" \
  > "$work/configure.log" || { cat "$work/configure.log"; exit 1; }
"$cmake" --build "$work/build" > "$work/build.log" || { cat "$work/build.log"; exit 1; }

# The plugin exports its entry symbol and nothing else.
exported=$(nm -D --defined-only "$work/build/minimal_rule.so" | awk '{print $3}')
if [ "$exported" != "iots_plugin_descriptors" ]; then
  echo "FAIL: minimal_rule.so exports: $exported"; exit 1
fi

# The installed library (found through the installed package, not the build tree) loads it.
mkdir -m 0700 "$work/plugins"
cp "$work/build/minimal_rule.so" "$work/plugins/"
described=$(LD_LIBRARY_PATH= "$work/build/describe_plugins" "$work/plugins")
linked=$(ldd "$work/build/describe_plugins" | awk '/libiotstream/ {print $3}')
case "$linked" in
  "$prefix"/*) ;;
  *) echo "FAIL: describe_plugins runs with $linked, not the installed library under $prefix"; exit 1 ;;
esac
/usr/bin/python3 - "$described" <<'PY'
import json, sys
described = json.loads(sys.argv[1])
assert not described["rejected"], described["rejected"]
[plugin] = described["plugins"]
assert (plugin["name"], plugin["kind"]) == ("minimal_rule", "rule"), plugin
assert [key["name"] for key in plugin["config"]] == ["field", "threshold"], plugin["config"]
PY
grep -q "found iotstream $version" "$work/configure.log"
echo "ok: built minimal_rule.so out of tree with find_package(iotstream $version EXACT); the installed library loads it"
