"""GET /metrics of a real iotstream-host (issue 15): every page passes `promtool check metrics`
(Debian prometheus), and the counters follow the records we produced ourselves: the
consumed_total of two scrapes equals the readings produced before each, the gateway's ingest
counters count a reading posted to it; consumer lag falls to 0 once everything is read, each
stage's process-time histogram counts every batch and its records_in every decoded reading,
a hot replace moves the plugin change counter, the window stage reports open windows, commits
keep the commit age low. Python's Pipeline.metrics() gives the same format; after a bounded run
with a late reading and the test sink, lag, open windows and open sensors are 0, the late
reading is counted and the sink's acknowledged records are the records it wrote."""
import http.client
import json
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "pipeline"))
from conftest import BUILD, Broker, HostProcess, envelope, produce, readings, to_records  # noqa: E402
from correctness import private_plugin_dir, replace_plugin  # noqa: E402

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


def series(page, family):
    """{label text: value} of every sample of `family` ({} when it has none)."""
    return {m.group(1) or "": float(m.group(2))
            for m in re.finditer("^" + re.escape(family) + r"(\{[^}]*\})? (\S+)$", page, re.M)}


def has_family(page, family, kind):
    assert f"# TYPE {family} {kind}\n" in page, f"{family} ({kind}) not on the page:\n{page}"


def check_stage_histograms(page, batches):
    """Every stage's process() histogram counted each batch once, cumulative up to +Inf."""
    counts = series(page, "iotstream_stage_process_seconds_count")
    assert counts, page
    for labels, count in counts.items():
        assert count == batches, (labels, count, batches)
        stage = labels[1:-1]  # stage="..."
        buckets = [v for k, v in series(page, "iotstream_stage_process_seconds_bucket").items() if stage in k]
        assert buckets == sorted(buckets) and buckets[-1] == count, (stage, buckets)
        assert series(page, "iotstream_stage_process_seconds_sum")[labels] > 0


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
    plugins = private_plugin_dir(tmp_path)
    host = HostProcess("--bootstrap", broker.bootstrap, "--no-generate", "--metrics-listen", "127.0.0.1:0",
                       "--gateway-listen", "127.0.0.1:0", "--shared-token-file", str(token_file),
                       "--window-size", "2", "--grace", "1", "--show-windows", "0", plugins=plugins)
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

        # Lag: every partition read to its end within the gauges' refresh (1 s).
        for family, kind in [("iotstream_consumer_lag_records", "gauge"), ("iotstream_stage_process_seconds", "histogram"),
                             ("iotstream_stage_records_in_total", "counter"), ("iotstream_stage_records_out_total", "counter"),
                             ("iotstream_pipeline_late_records_total", "counter"),
                             ("iotstream_pipeline_open_sensors", "gauge"), ("iotstream_stage_open_windows", "gauge"),
                             ("iotstream_pipeline_commit_age_seconds", "gauge"), ("iotstream_plugins_loaded", "gauge"),
                             ("iotstream_plugins_rejected", "gauge"), ("iotstream_plugin_changes_total", "counter"),
                             ("iotstream_sink_acknowledged_records_total", "counter")]:
            has_family(page2, family, kind)
        deadline = time.time() + 15
        while True:
            page3 = scrape(metrics_port)
            lag = series(page3, "iotstream_consumer_lag_records")
            if lag and all(v == 0 for v in lag.values()) or time.time() > deadline:
                break
            time.sleep(0.3)
        assert len(lag) == 4 and all(v == 0 for v in lag.values()), lag  # the broker's 4 partitions
        promtool_check(page3)
        batches = value(page3, "iotstream_pipeline_batches_total")
        check_stage_histograms(page3, batches)
        records_in = series(page3, "iotstream_stage_records_in_total")
        assert set(records_in) >= {'{stage="window"}', '{stage="aggregate"}', '{stage="anomaly"}'}, records_in
        assert all(v == value(page3, "iotstream_pipeline_decoded_total") for v in records_in.values()), records_in
        assert value(page3, 'iotstream_stage_records_out_total{stage="window"}') == \
            value(page3, 'iotstream_pipeline_emitted_total{output="windows"}') > 0
        # The last windows are still open (grace 1 s past the newest reading); 5 sensors hold them.
        assert value(page3, 'iotstream_stage_open_windows{stage="window"}') >= 5
        assert value(page3, 'iotstream_stage_open_sensors{stage="window"}') == 5
        assert sum(series(page3, "iotstream_pipeline_open_sensors").values()) >= 5
        assert value(page3, "iotstream_pipeline_late_records_total") == 0
        assert value(page3, "iotstream_pipeline_commits_total") > 0
        assert value(page3, "iotstream_pipeline_commit_age_seconds") < 5  # commit_interval_ms 1000
        assert value(page3, "iotstream_plugins_loaded") == 3 and value(page3, "iotstream_plugins_rejected") == 0

        # A hot replace moves the change counter; the stage goes on counting under its name.
        assert value(page3, 'iotstream_plugin_changes_total{change="replaced"}') == 0
        replace_plugin(plugins, "anomaly.so")
        deadline = time.time() + 20
        while value(scrape(metrics_port), 'iotstream_plugin_changes_total{change="replaced"}') < 1:
            assert time.time() < deadline, host.output()
            time.sleep(0.3)

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
        late = ("sensor_0", envelope("sensor_0", T0, {"temperature": 1.0, "humidity": 1.0, "pressure": 1.0}))
        produce(broker.bootstrap, rows + [("sensor_0", "{not json"), late])
        plugins = private_plugin_dir(tmp_path, extra=())
        sink_so = BUILD / "tests" / "pipeline" / "fixtures" / "test_sink.so"
        (plugins / "test_sink.so").write_bytes(sink_so.read_bytes())
        (plugins / "test_sink.so").chmod(0o755)
        sink_file = tmp_path / "sink.tsv"
        pipeline = iotstream.Pipeline({"kafka": {"bootstrap.servers": broker.bootstrap},
                                       "input": {"topics": ["iot-readings"], "group_id": "metrics-py"},
                                       "plugins": {"dir": str(plugins)},
                                       "stages": [{"plugin": "window", "config": {"size_s": 1, "grace_s": 0}}],
                                       "sinks": [{"plugin": "test_sink", "config": {"file": str(sink_file)},
                                                  "outputs": ["windows"], "max_batch": 5}]})
        pipeline.run_bounded(timeout=60)
        page = pipeline.metrics()
        promtool_check(page)
        assert value(page, "iotstream_pipeline_consumed_total") == len(rows) + 2
        assert value(page, 'iotstream_pipeline_dead_letters_total{stage="decoder"}') == 1
        assert value(page, 'iotstream_pipeline_dead_letters_by_reason_total{reason="not_json"}') == 1
        windows = value(page, 'iotstream_pipeline_emitted_total{output="windows"}')
        assert windows == 16  # 4 sensors x 4 one-second windows
        # The reading at T0 came after its window closed (grace 0).
        assert value(page, "iotstream_pipeline_late_records_total") == 1
        assert value(page, 'iotstream_pipeline_dead_letters_by_reason_total{reason="late"}') == 1
        # Read to the end, every window closed: lag, open windows and open sensors are 0.
        lag = series(page, "iotstream_consumer_lag_records")
        assert lag and all(v == 0 for v in lag.values()), lag
        assert value(page, 'iotstream_stage_open_windows{stage="window"}') == 0
        assert all(v == 0 for v in series(page, "iotstream_pipeline_open_sensors").values())
        assert value(page, 'iotstream_stage_records_in_total{stage="window"}') == len(rows) + 1
        assert value(page, 'iotstream_stage_records_out_total{stage="window"}') == windows
        assert 0 < value(page, 'iotstream_stage_process_seconds_count{stage="window"}') <= \
            value(page, "iotstream_pipeline_batches_total")
        assert value(page, "iotstream_pipeline_commits_total") > 0
        # The sink: every window acknowledged, in batches of at most 5.
        written = [line for line in sink_file.read_text().splitlines() if line.startswith("windows\t")]
        assert len(written) == windows
        assert value(page, 'iotstream_sink_acknowledged_records_total{sink="test_sink"}') == windows
        assert value(page, 'iotstream_sink_records_total{sink="test_sink"}') == windows
        assert value(page, 'iotstream_sink_acknowledged_batches_total{sink="test_sink"}') >= windows / 5
        assert value(page, 'iotstream_sink_failed_batches_total{sink="test_sink"}') == 0
        assert value(page, 'iotstream_sink_unacknowledged_batches{sink="test_sink"}') == 0
        assert value(page, "iotstream_plugins_loaded") == 4
        pipeline.close()
    finally:
        broker.stop()


def test_gateway_mqtt_counters_on_the_metrics_page(tmp_path):
    """The gateway's MQTT subscriber counters (iotstream_mqtt_*) follow its own stats and pass
    promtool: a valid reading, an invalid one (to the DLQ), one naming another device's
    sensor_id (forbidden) and one over the device's burst (rate limited), all at QoS 1."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "gateway"))
    from test_mqtt import Device, Mosquitto, MqttGateway  # noqa: E402

    kafka = Broker(tmp_path)
    mosquitto = Mosquitto(tmp_path)
    gateway = MqttGateway(kafka, mosquitto, "--device-burst", "1", "--device-rate", "0.01")
    device = Device(mosquitto, "metrics-device")
    try:
        page = scrape(gateway.port)
        promtool_check(page)
        assert value(page, "iotstream_mqtt_messages_total") == 0
        assert value(page, "iotstream_mqtt_clients_subscribed") == 1
        good = {"sensor_id": "dev-1", "data": {"temperature": 21.0, "humidity": 40.0, "pressure": 1000.0}}
        device.publish("dev-1", json.dumps(good))
        device.publish("dev-2", json.dumps({"sensor_id": "dev-2", "data": {"temperature": "hot"}}))
        device.publish("dev-3", json.dumps(dict(good, sensor_id="dev-4")))
        device.publish("dev-1", json.dumps(good))  # over dev-1's burst of 1
        m = gateway.wait(lambda m: m["messages"] >= 4, "counted 4 messages")
        page = scrape(gateway.port)
        promtool_check(page)
        assert value(page, "iotstream_mqtt_messages_total") == m["messages"] == 4
        assert value(page, "iotstream_mqtt_readings_received_total") == m["received"] == 4
        for result, expected in [("accepted", 1), ("invalid", 1), ("forbidden", 1), ("rate_limited", 1),
                                 ("dropped", 0)]:
            assert value(page, f'iotstream_mqtt_readings_total{{result="{result}"}}') == m[result] == expected, result
        assert value(page, "iotstream_mqtt_connects_total") == m["connects"] >= 1
        assert value(page, "iotstream_mqtt_clients_connected") == 1
        # The core's ingestion counters stay on the same page.
        assert value(page, 'iotstream_ingest_readings_total{result="accepted"}') == 1
    finally:
        device.close()
        gateway.stop()
        mosquitto.stop()
        kafka.stop()
