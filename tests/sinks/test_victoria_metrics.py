"""influx_sink against VictoriaMetrics (Debian's victoria-metrics; issue 15), which takes the
same InfluxDB line protocol on /write. The test starts victoria-metrics on a loopback port with a
temporary data folder (retention 100 years: the readings are from 2023, and VictoriaMetrics
drops samples older than its retention without an error), runs a bounded iotstream-host with the
sink over readings produced by confluent-kafka to an iotstream-broker, and reads the samples back
with /api/v1/export: every window on iot-windows is there once (one sample per field, at the
window's start), with its values."""
import json
import sys
import urllib.parse
import urllib.request
from collections import defaultdict
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "pipeline"))
from conftest import broker  # noqa: E402,F401
from test_influx_sink import (StoreProcess, expected_windows, free_port, produce_readings, run_bounded,  # noqa: E402
                              serve)

VICTORIA = "/usr/bin/victoria-metrics"


class Victoria(StoreProcess):
    def __init__(self, tmp_path):
        self.port = free_port()
        self.start([VICTORIA, f"-storageDataPath={tmp_path / 'vm-data'}", f"-httpListenAddr=127.0.0.1:{self.port}",
                    "-retentionPeriod=100y"], tmp_path / "victoria-metrics.log", "/health", 200)

    def export(self, match):
        """Every series matching `match` as {"metric": labels, "values": [...], "timestamps": [...]}."""
        with urllib.request.urlopen(f"{self.url}/internal/force_flush", timeout=30):
            pass  # samples become searchable at once instead of within a second
        params = urllib.parse.urlencode({"match[]": match, "start": "2020-01-01T00:00:00Z"})
        with urllib.request.urlopen(f"{self.url}/api/v1/export?{params}", timeout=30) as r:
            return [json.loads(line) for line in r.read().decode().splitlines() if line.strip()]

@pytest.fixture
def victoria(tmp_path):
    yield from serve(VICTORIA, "victoria-metrics", lambda: Victoria(tmp_path))


def samples(victoria, metric):
    """{(sensor_id, timestamp ms): [values]} of `metric` (a list: a repeated sample would show)."""
    out = defaultdict(list)
    for series in victoria.export(metric):
        assert series["metric"]["__name__"] == metric
        for ts, value in zip(series["timestamps"], series["values"]):
            out[(series["metric"]["sensor_id"], ts)].append(value)
    return out


def test_every_window_once_with_its_values(tmp_path, broker, victoria):
    produce_readings(broker.bootstrap)
    run_bounded(tmp_path, broker, victoria, "victoria-1")
    expected = expected_windows(broker.bootstrap)

    # A line `iot_windows,sensor_id=s1 temperature_avg=..,sample_count=.. <start>` is one sample
    # per field, in metrics named measurement_field.
    counts = samples(victoria, "iot_windows_sample_count")
    assert set(counts) == set(expected), (len(counts), len(expected))
    for key, w in expected.items():
        assert counts[key] == [w["sample_count"]], key
    for field, pick in [("temperature_min", lambda w: w["temperature"]["min"]),
                        ("temperature_max", lambda w: w["temperature"]["max"]),
                        ("temperature_avg", lambda w: w["temperature"]["avg"]),
                        ("humidity_avg", lambda w: w["humidity"]["avg"]),
                        ("window_end", lambda w: w["window_end"])]:
        got = samples(victoria, f"iot_windows_{field}")
        assert set(got) == set(expected), field
        for key, w in expected.items():
            assert len(got[key]) == 1 and got[key][0] == pytest.approx(pick(w)), (field, key, got[key])
    assert samples(victoria, "iot_aggregates_sample_count"), "no aggregates written"
