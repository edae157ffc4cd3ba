"""iotstream-host as a person meets it (issue 6): the main job, replay, scale-out."""
import json
import re
import time

from conftest import (Broker, HostProcess, check_windows_complete, consume_all, fast_group_config, produce,
                      readings, run_host, to_records, wait_committed, windows_of)
from reference import tumbling_windows

T0 = 1_767_225_600_000


def test_main_job_runs_and_its_counts_reconcile(tmp_path):
    summary_file = tmp_path / "summary.json"
    proc = run_host("--duration", "5", "--rate", "4000", "--sensors", "2000", "--window-size", "2",
                    "--grace", "1", "--anomaly-share", "0.05", "--summary-json", str(summary_file))
    assert "Summary" in proc.stdout and "counts reconcile" in proc.stdout
    assert "embedded Kafka broker at 127.0.0.1:" in proc.stdout
    s = json.loads(summary_file.read_text())
    gen, pipe = s["loadgen"], s["pipeline"]
    assert s["reconciled"] is True
    assert 15000 <= gen["sent"] <= 25000, gen  # ~4000/s for 5 s
    assert gen["delivered"] == gen["sent"] and gen["failed"] == 0
    assert pipe["consumed"] == gen["sent"]
    assert pipe["consumed"] == pipe["decoded"] + pipe["dead_lettered"]["decoder"]
    assert pipe["dead_lettered"]["decoder"] == 0
    # Every generated anomaly fires exactly one of the seed's rules.
    assert pipe["alerts"] == gen["anomalous"] > 0
    assert pipe["emitted"]["windows"] > 2000  # 2-second windows over ~6 s of data, 2000 sensors
    assert pipe["outputs"]["delivered"] == pipe["outputs"]["sent"]


def test_help_and_bad_flags_are_clear():
    proc = run_host("--help")
    for flag in ("--duration", "--rate", "--sensors", "--anomaly-share", "--window-size", "--grace",
                 "--plugins", "--config", "--bootstrap", "--bounded", "--input-topic", "--on-stop"):
        assert flag in proc.stdout
    bad = run_host("--rate", "fast", check=False)
    assert bad.returncode == 2 and "--rate needs a number" in bad.stderr
    bad = run_host("--on-stop", "later", check=False)
    assert bad.returncode == 2 and "--on-stop must be resume or close" in bad.stderr
    bad = run_host("--frobnicate", check=False)
    assert bad.returncode == 2 and "unknown option '--frobnicate'" in bad.stderr


def test_help_states_the_defaults_the_core_and_the_plugins_declare():
    """--help writes no default of its own: each is read from iots_defaults_json or from the
    descriptor of the plugin that owns the key, so the text cannot drift from the code."""
    import iotstream
    from conftest import PLUGIN_DIR
    text = run_host("--help", "--plugins", str(PLUGIN_DIR)).stdout
    core, plugins = iotstream.defaults(), iotstream.describe_plugins(PLUGIN_DIR)

    def default(plugin, key):
        return next(k.default for k in plugins[plugin].config if k.name == key)
    expected = {"--window-size": default("window", "size_s"), "--grace": default("window", "grace_s"),
                "--idle-timeout": default("window", "idle_timeout_ms"),
                "--aggregate-interval": default("aggregate", "interval_ms"),
                "--partitions": core["partitions"], "--input-topic": core["topics"]["readings"]}
    for flag, value in expected.items():
        line = next(line for line in text.splitlines() if line.strip().startswith(flag + " "))
        assert f"(default {value}" in line, (flag, value, line)
    assert "@{" not in text


def with_outputs(tmp_path, name, windows_topic):
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps({"pipeline": {"outputs": {"windows": windows_topic}}}))
    return str(path)


def test_bounded_replay_gives_the_streaming_windows(tmp_path):
    broker = Broker(tmp_path, extra_topics=["windows-stream", "windows-replay"])
    try:
        rows = readings(sensors=30, start_ms=T0, end_ms=T0 + 40_000, step_ms=400)
        produce(broker.bootstrap, to_records(rows))
        common = ["--bootstrap", broker.bootstrap, "--window-size", "10", "--grace", "2",
                  "--idle-timeout", "600000", "--show-windows", "0"]

        # The stream ends here (its input does not go on), so the stop closes the open windows.
        streaming = HostProcess(*common, "--no-generate", "--group", "streaming", "--run-for", "600",
                                "--on-stop", "close", "--config", with_outputs(tmp_path, "stream", "windows-stream"))
        streaming.wait_consumed(len(rows))
        time.sleep(1.5)
        assert streaming.stop() == 0, streaming.output()

        run_host(*common, "--bounded", "--group", "replay",
                 "--config", with_outputs(tmp_path, "replay", "windows-replay"))

        stream_windows = windows_of(consume_all(broker.bootstrap, "windows-stream"))
        replay_windows = windows_of(consume_all(broker.bootstrap, "windows-replay"))
        key = lambda w: (w["sensor_id"], w["window_start"])
        assert len(stream_windows) == 30 * 4
        assert sorted(stream_windows, key=key) == sorted(replay_windows, key=key)
    finally:
        broker.stop()


def test_three_hosts_share_partitions_and_survive_losing_one(tmp_path):
    broker = Broker(tmp_path, partitions=8)
    try:
        part_a = readings(sensors=60, start_ms=T0, end_ms=T0 + 25_000, step_ms=500)
        part_b = readings(sensors=60, start_ms=T0 + 25_000, end_ms=T0 + 50_000, step_ms=500)
        expected, late = tumbling_windows({0: part_a + part_b}, size_s=10, grace_s=2)
        assert not late
        # The last windows close through the idle timeout, on whichever member owns their
        # partition then: the test never depends on who holds what when it stops them.
        args = ["--bootstrap", broker.bootstrap, "--no-generate", "--group", "scale-out", "--window-size", "10",
                "--grace", "2", "--idle-timeout", "15000", "--show-windows", "0", "--run-for", "600",
                "--config", fast_group_config(tmp_path), "--log-level", "info"]
        hosts = [HostProcess(*args) for _ in range(3)]
        # Produce only once every member holds partitions: otherwise the first member to join
        # may read all of part_a before the others are assigned anything.
        for h in hosts:
            h.wait_log(lambda line: re.search(r"assigned [1-9][0-9]* partition", line) is not None, timeout=90)
        produce(broker.bootstrap, to_records(part_a))
        deadline = time.time() + 60
        while sum(h.consumed for h in hosts) < len(part_a) and time.time() < deadline:
            time.sleep(0.2)
        assert sum(h.consumed for h in hosts) >= len(part_a)
        assert all(h.consumed > 0 for h in hosts), "every member must own partitions"
        wait_committed(broker.bootstrap, "scale-out", "iot-readings")

        victim = max(hosts, key=lambda h: h.consumed)
        victim.kill()  # its partitions move to the others after its session times out
        survivors = [h for h in hosts if h is not victim]
        produce(broker.bootstrap, to_records(part_b))

        deadline = time.time() + 150
        while True:
            emitted = windows_of(consume_all(broker.bootstrap, "iot-windows", idle=0.5))
            if {(w["sensor_id"], w["window_start"]) for w in emitted} >= set(expected) or time.time() > deadline:
                break
            time.sleep(2)
        for h in survivors:
            assert h.stop() == 0, h.output()
        check_windows_complete(windows_of(consume_all(broker.bootstrap, "iot-windows")), expected)
    finally:
        broker.stop()


def bounded_from(tmp_path, broker, name, **start):
    config = tmp_path / f"{name}.json"
    config.write_text(json.dumps({"pipeline": {"input": start}}))
    summary = tmp_path / f"{name}-summary.json"
    run_host("--bootstrap", broker.bootstrap, "--bounded", "--group", name, "--window-size", "10", "--grace", "2",
             "--show-windows", "0", "--config", str(config), "--summary-json", str(summary))
    return json.loads(summary.read_text())["pipeline"]


def test_bounded_replay_starts_at_an_offset_or_a_time(tmp_path):
    broker = Broker(tmp_path, partitions=1)
    try:
        # One partition, one reading per second: offset n has event time T0 + n s.
        rows = readings(sensors=1, start_ms=T0, end_ms=T0 + 100_000, step_ms=1000)
        produce(broker.bootstrap, to_records(rows))
        assert bounded_from(tmp_path, broker, "from-offset", start_offset=60)["consumed"] == 40
        # The first record at or after a time: the broker's record timestamps are produce times,
        # so "now" minus an hour reads everything and the future reads nothing (and returns).
        now_ms = int(time.time() * 1000)
        assert bounded_from(tmp_path, broker, "from-past", start_time_ms=now_ms - 3_600_000)["consumed"] == 100
        assert bounded_from(tmp_path, broker, "from-future", start_time_ms=now_ms + 3_600_000)["consumed"] == 0
        windows = windows_of(consume_all(broker.bootstrap, "iot-windows"))
        from_offset = [w for w in windows if w["window_start"] >= T0 // 1000 + 60]
        assert sum(w["sample_count"] for w in from_offset) >= 40
    finally:
        broker.stop()
