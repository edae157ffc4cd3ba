#!/usr/bin/env bash
# Installs everything iotstream needs on Debian 12 (bookworm). Idempotent: packages already
# present are skipped, so both README commands can call it every time.
set -euo pipefail

packages=(
  # toolchain
  build-essential cmake pkg-config git
  # core and plugins
  librdkafka-dev libboost-dev nlohmann-json3-dev libspdlog-dev libfmt-dev libsimdjson-dev
  # tests and benchmarks
  libgtest-dev libgmock-dev libbenchmark-dev kcat binutils wrk curl
  # fuzzing (scripts/fuzz.sh): Debian's clang 14 and its runtimes (libFuzzer, ASan, UBSan);
  # gcc's sanitizer runtimes (scripts/sanitize.sh) come with build-essential
  clang libclang-rt-14-dev
  # MQTT: the gateway subscribes through libmosquitto; tests and the demo start Debian's broker,
  # tests publish with paho-mqtt
  mosquitto mosquitto-clients libmosquitto-dev python3-paho-mqtt  # mosquitto_pub: the README example
  prometheus  # promtool checks the /metrics page (tests/metrics)
  chromium  # the dashboard's browser test (tests/dashboard; node and playwright-core below)
  # sinks: plugins/influx_sink POSTs with libcurl; its tests start Debian's influxd (InfluxDB 1.x)
  # and victoria-metrics (/usr/bin/victoria-metrics, the same line protocol)
  libcurl4-openssl-dev influxdb victoria-metrics
  # Python bindings (Debian's /usr/bin/python3; PyPI is not reachable)
  python3 python3-dev pybind11-dev python3-pybind11 python3-pytest python3-numpy python3-pandas
  python3-matplotlib jupyter-nbconvert python3-ipykernel python3-nbformat python3-pip python3-setuptools python3-wheel
  # peers measured by the benchmarks
  python3-confluent-kafka python3-kafka python3-lz4  # kafka-python needs lz4 for the seed run
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#packages[@]} packages present"
else
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  echo "install-deps: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# playwright-core (npm; not in Debian) drives Debian's chromium in the dashboard's browser test.
# It goes to a folder of its own, outside the repository; tests find it through NODE_PATH.
node_dir=${IOTSTREAM_NODE_DIR:-/usr/local/lib/iotstream-node}
if ! command -v npm > /dev/null; then
  # Debian's nodejs + npm, unless a node with its own npm (e.g. NodeSource's) is there already.
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get install -y -qq --no-install-recommends nodejs npm
fi
playwright_version=1.65.1
if [ ! -f "$node_dir/node_modules/playwright-core/package.json" ] || \
   ! grep -q "\"version\": \"$playwright_version\"" "$node_dir/node_modules/playwright-core/package.json"; then
  echo "install-deps: npm install playwright-core@$playwright_version into $node_dir"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO mkdir -p "$node_dir"
  $SUDO npm install --prefix "$node_dir" --no-audit --no-fund --silent "playwright-core@$playwright_version"
fi
