#!/usr/bin/env bash
# libiotstream.so must export the C API (iots_*) and nothing else.
set -euo pipefail
lib="$1"
symbols=$(nm -D --defined-only "$lib" | awk '{print $3}')
count=$(printf '%s\n' "$symbols" | grep -c . || true)
stray=$(printf '%s\n' "$symbols" | grep -v '^iots_' || true)
if [ -n "$stray" ]; then
  echo "FAIL: $lib exports symbols outside iots_*:"; printf '  %s\n' $stray | head -20; exit 1
fi
for required in iots_version iots_version_str iots_get_api iots_err_str iots_broker_new iots_ingest_new \
                iots_ingest_submit iots_ingest_reply_item iots_ingest_close iots_metrics_prometheus iots_pipeline_set_output_tap \
                iots_defaults_json iots_parse_int; do
  # A here-string, not a pipe: grep -q exits at the first match, and under pipefail the
  # writer's SIGPIPE would fail the check at random.
  grep -qx "$required" <<<"$symbols" || { echo "FAIL: $required is not exported"; exit 1; }
done
soname=$(objdump -p "$lib" | awk '/SONAME/ {print $2}')
case "$soname" in
  libiotstream.so.[0-9]*) ;;
  *) echo "FAIL: SONAME is '$soname', expected libiotstream.so.<abi major>"; exit 1 ;;
esac
echo "ok: $count symbols, all iots_*; SONAME $soname"
