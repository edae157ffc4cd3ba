"""GET /metrics of a real iotstream-host (issue 15): every page passes `promtool check metrics`
(Debian prometheus), and the counters follow the records we produced ourselves: the
consumed_total of two scrapes equals the readings produced before each, the gateway's ingest
counters count a reading posted to it. Python's Pipeline.metrics() gives the same format."""
import http.client
import json
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "pipeline"))
from conftest import Broker, HostProcess, produce, readings, to_records  # noqa: E402

T0 = 1_767_225_600_000
TOKEN = "shared-token-0123456789"


def promtool_check(page):
    proc = subprocess.run(["promtool", "check", "metrics"], input=page, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, f"promtool: {proc.stdout}{proc.stderr}\npage:\n{page}"


def scrape(port):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("GET", "/metrics")
    response = conn.getresponse()
    body = response.read().decode()
    conn.close()
    assert response.status == 200, body
    assert response.getheader("Content-Type").startswith("text/plain; version=0.0.4")
    return body


def value(page, series):
    match = re.search("^" + re.escape(series) + r" (\S+)$", page, re.M)
    assert match, f"{series} not on the page:\n{page}"
    return float(match.group(1))


def port_after(host, prefix):
    deadline = time.time() + 30
    while time.time() < deadline:
        for line in host.lines:
            if line.startswith(prefix):
                return int(re.search(r":(\d+)", line.split("http://")[1]).group(1))
        if host.proc.poll() is not None:
            break
        time.sleep(0.05)
    raise AssertionError(f"no '{prefix}' line:\n" + host.output())


def test_metrics_pages_pass_promtool_and_count_the_records_produced(tmp_path):
    broker = Broker(tmp_path)
    first = to_records(readings(sensors=5, start_ms=T0, end_ms=T0 + 6_000, step_ms=100))  # 300
    second = to_records(readings(sensors=5, start_ms=T0 + 6_000, end_ms=T0 + 10_000, step_ms=100))  # 200
    token_file = tmp_path / "shared"
    token_file.write_text(TOKEN + "\n")
    produce(broker.bootstrap, first)
    host = HostProcess("--bootstrap", broker.bootstrap, "--no-generate", "--metrics-listen", "127.0.0.1:0",
                       "--gateway-listen", "127.0.0.1:0", "--shared-token-file", str(token_file),
                       "--window-size", "2", "--grace", "1", "--show-windows", "0")
    try:
        metrics_port = port_after(host, "metrics at http://")
        gateway_port = port_after(host, "gateway listening on http://")
        host.wait_consumed(len(first))
        page1 = scrape(metrics_port)
        promtool_check(page1)
        assert value(page1, "iotstream_pipeline_consumed_total") == len(first)
        assert value(page1, "iotstream_pipeline_running") == 1
        assert value(page1, 'iotstream_pipeline_dead_letters_total{stage="decoder"}') == 0

        produce(broker.bootstrap, second)
        host.wait_consumed(len(first) + len(second))
        page2 = scrape(metrics_port)
        promtool_check(page2)
        assert value(page2, "iotstream_pipeline_consumed_total") == len(first) + len(second)
        assert value(page2, "iotstream_pipeline_decoded_total") > value(page1, "iotstream_pipeline_decoded_total")
        assert value(page2, "iotstream_pipeline_uptime_seconds") > value(page1, "iotstream_pipeline_uptime_seconds")

        # The gateway's server serves the same page with its ingestion counters.
        before = scrape(gateway_port)
        promtool_check(before)
        accepted = 'iotstream_ingest_readings_total{result="accepted"}'
        invalid = 'iotstream_ingest_readings_total{result="invalid"}'
        conn = http.client.HTTPConnection("127.0.0.1", gateway_port, timeout=10)
        body = "\n".join([json.dumps({"sensor_id": "dev-9", "timestamp": T0 + 10_000,
                                      "data": {"temperature": 21.0, "humidity": 40.0, "pressure": 1000.0}}),
                          json.dumps({"sensor_id": "dev-9", "data": {"temperature": "hot"}})])
        conn.request("POST", "/v1/readings", body=body,
                     headers={"X-Device-Id": "dev-9", "Authorization": "Bearer " + TOKEN})
        assert conn.getresponse().status == 202
        conn.close()
        after = scrape(gateway_port)
        promtool_check(after)
        assert value(after, accepted) == value(before, accepted) + 1
        assert value(after, invalid) == value(before, invalid) + 1
        assert value(after, "iotstream_pipeline_consumed_total") >= len(first) + len(second)
    finally:
        code = host.stop()
        broker.stop()
    assert code == 0, host.output()


def test_python_pipeline_metrics_pass_promtool(tmp_path):
    import iotstream
    broker = Broker(tmp_path)
    try:
        rows = to_records(readings(sensors=4, start_ms=T0, end_ms=T0 + 4_000, step_ms=100))  # 160
        produce(broker.bootstrap, rows + [("sensor_0", "{not json")])
        pipeline = iotstream.Pipeline({"kafka": {"bootstrap.servers": broker.bootstrap},
                                       "input": {"topics": ["iot-readings"], "group_id": "metrics-py"},
                                       "stages": [{"plugin": "window", "config": {"size_s": 1, "grace_s": 0}}]})
        pipeline.run_bounded(timeout=60)
        page = pipeline.metrics()
        promtool_check(page)
        assert value(page, "iotstream_pipeline_consumed_total") == len(rows) + 1
        assert value(page, 'iotstream_pipeline_dead_letters_total{stage="decoder"}') == 1
        assert value(page, 'iotstream_pipeline_dead_letters_by_reason_total{reason="not_json"}') == 1
        assert value(page, 'iotstream_pipeline_emitted_total{output="windows"}') > 0
        pipeline.close()
    finally:
        broker.stop()
