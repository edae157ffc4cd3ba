"""influx_sink against Debian's own influxd (InfluxDB 1.x; issue 15). The test starts influxd on
loopback ports with a temporary meta/data/wal folder, creates a database, runs a bounded
iotstream-host with the sink over readings produced by confluent-kafka to an iotstream-broker,
and reads the points back through InfluxDB's HTTP API (/query): every window on iot-windows is
there once, with its values. A second bounded run replaying the same input (a fresh group)
writes every window again, and the point count stays the same: a window's point is timed at
its start, so a repeat overwrites it."""
import json
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "pipeline"))
from conftest import HOST_BIN, broker, consume_all, envelope, produce  # noqa: E402,F401
from correctness import private_plugin_dir  # noqa: E402

INFLUXD = "/usr/bin/influxd"
SENSORS = 20
READINGS = 2000
BASE_MS = 1_700_000_000_000


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class StoreProcess:
    """A store's server for one test: started with its output in a log file, up once GET
    <url><health> answers `status` (30 s at most), terminated by stop()."""

    def start(self, argv, log_path, health, status):
        self.log_path = log_path
        self.log = open(log_path, "w")
        self.proc = subprocess.Popen(argv, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + 30
        while True:
            try:
                with urllib.request.urlopen(f"{self.url}{health}", timeout=2) as r:
                    if r.status == status:
                        break
            except OSError:
                pass
            assert self.proc.poll() is None, log_path.read_text()
            assert time.time() < deadline, f"{argv[0]} did not answer {health} within 30 s"
            time.sleep(0.2)

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=30)
        self.log.close()


def serve(binary, package, make):
    """A fixture's body: the server make() starts, stopped after the test."""
    if not Path(binary).exists():
        pytest.fail(f"{binary} is not installed (scripts/install-deps.sh installs Debian's {package})")
    server = make()
    yield server
    server.stop()


class Influx(StoreProcess):
    def __init__(self, tmp_path):
        self.port = free_port()
        root = tmp_path / "influx"
        for d in ("meta", "data", "wal"):
            (root / d).mkdir(parents=True)
        config = root / "influxdb.conf"
        config.write_text(f"""reporting-disabled = true
bind-address = "127.0.0.1:{free_port()}"
[meta]
  dir = "{root / 'meta'}"
[data]
  dir = "{root / 'data'}"
  wal-dir = "{root / 'wal'}"
  query-log-enabled = false
[http]
  enabled = true
  bind-address = "127.0.0.1:{self.port}"
  log-enabled = false
[monitor]
  store-enabled = false
[continuous_queries]
  enabled = false
""")
        self.start([INFLUXD, "run", "-config", str(config)], root / "influxd.log", "/ping", 204)

    def query(self, q, db=None):
        params = {"q": q, "epoch": "ms"}
        if db:
            params["db"] = db
        req = urllib.request.Request(f"{self.url}/query", data=urllib.parse.urlencode(params).encode(), method="POST")
        with urllib.request.urlopen(req, timeout=30) as r:
            result = json.load(r)["results"][0]
        assert "error" not in result, result
        return result

    def rows(self, q, db):
        """Every row of every series as a dict, tags included."""
        out = []
        for series in self.query(q, db).get("series", []):
            for values in series["values"]:
                row = dict(zip(series["columns"], values))
                row.update(series.get("tags", {}))
                out.append(row)
        return out

@pytest.fixture
def influx(tmp_path):
    yield from serve(INFLUXD, "influxdb", lambda: Influx(tmp_path))


def run_bounded(tmp_path, broker, influx, group):
    # Aggregates are emitted once, at the end (interval 10 min), so both runs emit the same ones.
    folder = private_plugin_dir(tmp_path, extra=("influx_sink.so",))
    config = tmp_path / f"{group}.json"
    config.write_text(json.dumps({"pipeline": {"sinks": [{
        "plugin": "influx_sink", "config": {"url": influx.url, "db": "iot"},
        "outputs": ["windows", "aggregates", "alerts"]}]}}))
    proc = subprocess.run([str(HOST_BIN), "--plugins", str(folder), "--bootstrap", broker.bootstrap, "--bounded",
                           "--group", group, "--window-size", "60", "--aggregate-interval", "600000", "--config", str(config),
                           "--show-windows", "0"],
                          capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"


def produce_readings(bootstrap):
    produce(bootstrap, (
        (f"s{i % SENSORS}", envelope(f"s{i % SENSORS}", BASE_MS + i * 1000,
                                     {"temperature": 20.0 + (i * 7 % 13) / 2, "humidity": 40.0 + i % 5,
                                      "pressure": 1000.0 + i % 3}))
        for i in range(READINGS)))


def expected_windows(bootstrap):
    """{(sensor_id, window start in ms): window result} of everything on iot-windows, each once."""
    windows = [json.loads(v)["data"] for _, v, _ in consume_all(bootstrap, "iot-windows")]
    assert len(windows) > SENSORS
    expected = {(w["sensor_id"], w["window_start"] * 1000): w for w in windows}
    assert len(expected) == len(windows), "iot-windows holds a window twice"
    return expected


def test_every_window_once_and_a_replay_overwrites(tmp_path, broker, influx):
    influx.query("CREATE DATABASE iot")
    produce_readings(broker.bootstrap)
    run_bounded(tmp_path, broker, influx, "influx-1")
    expected = expected_windows(broker.bootstrap)
    windows = list(expected.values())

    points = influx.rows("SELECT * FROM iot_windows", "iot")
    got = {(p["sensor_id"], p["time"]): p for p in points}
    assert len(points) == len(got) == len(expected)
    assert set(got) == set(expected)
    for key, w in expected.items():
        p = got[key]
        assert p["sample_count"] == w["sample_count"]
        for f in ("min", "max", "avg", "std"):
            assert p[f"temperature_{f}"] == pytest.approx(w["temperature"][f]), (key, f)
        assert p["humidity_avg"] == pytest.approx(w["humidity"]["avg"])
        assert p["window_end"] == w["window_end"]
    # One aggregate per sensor, timed at its newest reading's event time (deterministic).
    aggregates = influx.rows("SELECT * FROM iot_aggregates", "iot")
    newest = {f"s{s}": BASE_MS + max(i for i in range(READINGS) if i % SENSORS == s) * 1000 for s in range(SENSORS)}
    assert {(a["sensor_id"], a["time"]) for a in aggregates} == set(newest.items())
    assert all(a["sample_count"] == READINGS // SENSORS for a in aggregates)

    # A replay of the same input writes every window again, at the same timestamps.
    run_bounded(tmp_path, broker, influx, "influx-2")
    assert len(consume_all(broker.bootstrap, "iot-windows")) == 2 * len(windows)
    again = influx.rows("SELECT * FROM iot_windows", "iot")
    assert len(again) == len(points)
    assert {(p["sensor_id"], p["time"]) for p in again} == set(expected)
    # The replay's aggregates overwrite the first run's: still one point per sensor.
    assert len(consume_all(broker.bootstrap, "iot-aggregates")) == 2 * SENSORS
    assert len(influx.rows("SELECT * FROM iot_aggregates", "iot")) == SENSORS
