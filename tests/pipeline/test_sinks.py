"""Sinks (plugin.h "Sinks", ABI 1.3; issue 15): a bounded iotstream-host run with the test sink
(fixtures/test_sink.c) against a real iotstream-broker. The commit epochs wait for the sink's
acknowledgements as for Kafka deliveries: a sink that acknowledges gets every window and the
group commits; one that never acknowledges leaves nothing committed; one that fails stops the
pipeline with an error naming it, and nothing is committed."""
import json
import os
import shutil
import subprocess

from conftest import BUILD, HOST_BIN, broker, consume_all, envelope, produce  # noqa: F401
from correctness import committed_offsets, private_plugin_dir

SINK_SO = BUILD / "tests" / "pipeline" / "fixtures" / "test_sink.so"


def readings(n=2000, sensors=20):
    base = 1_700_000_000_000
    for i in range(n):
        sensor = f"s{i % sensors}"
        yield sensor, envelope(sensor, base + i * 1000, {"temperature": 20.0 + (i % 7), "humidity": 50.0, "pressure": 1010.0})


def run_with_sink(tmp_path, broker, group, sink_config, timeout=120):
    folder = private_plugin_dir(tmp_path)
    import os
    import shutil
    shutil.copy2(SINK_SO, folder / "test_sink.so")
    os.chmod(folder / "test_sink.so", 0o755)
    config = tmp_path / f"{group}.json"
    config.write_text(json.dumps({"pipeline": {
        "commit_interval_ms": 200,
        "sinks": [{"plugin": "test_sink", "config": sink_config, "outputs": ["windows", "alerts"]}]}}))
    return subprocess.run([str(HOST_BIN), "--plugins", str(folder), "--bootstrap", broker.bootstrap, "--bounded",
                           "--group", group, "--window-size", "60", "--config", str(config), "--show-windows", "0"],
                          capture_output=True, text=True, timeout=timeout)


def sink_lines(path, output):
    if not path.exists():
        return []
    return [line.split("\t", 2) for line in path.read_text().splitlines() if line.startswith(output + "\t")]


def test_sink_gets_every_window_and_the_group_commits_after_its_acks(tmp_path, broker):
    produce(broker.bootstrap, readings())
    out = tmp_path / "records.tsv"
    proc = run_with_sink(tmp_path, broker, "sink-ok", {"file": str(out)})
    assert proc.returncode == 0, proc.stderr
    windows = consume_all(broker.bootstrap, "iot-windows")
    assert windows
    got = sorted(v for _, _, v in sink_lines(out, "windows"))
    assert got == sorted(v.decode() for _, v, _ in windows)
    offsets = committed_offsets(broker.bootstrap, "sink-ok")
    assert sum(o for o in offsets.values() if o > 0) == 2000, offsets


def test_unacknowledged_sink_leaves_nothing_committed(tmp_path, broker):
    produce(broker.bootstrap, readings())
    out = tmp_path / "records.tsv"
    proc = run_with_sink(tmp_path, broker, "sink-noack", {"file": str(out), "ack": False})
    assert sink_lines(out, "windows"), proc.stderr  # it received them, it never said they were durable
    assert "has not acknowledged every batch" in proc.stderr, proc.stderr
    offsets = committed_offsets(broker.bootstrap, "sink-noack")
    assert all(o < 0 for o in offsets.values()), offsets


def test_failing_sink_stops_the_pipeline_naming_it(tmp_path, broker):
    produce(broker.bootstrap, readings())
    out = tmp_path / "records.tsv"
    proc = run_with_sink(tmp_path, broker, "sink-fail", {"file": str(out), "fail_at_batch": 1})
    assert proc.returncode != 0
    assert "sink 'test_sink' could not write batch" in proc.stderr, proc.stderr
    assert "test failure as configured" in proc.stderr
    offsets = committed_offsets(broker.bootstrap, "sink-fail")
    assert all(o < 0 for o in offsets.values()), offsets


def bounded_sink_pipeline(tmp_path, broker, group, sink_config, max_queued_batches):
    """A Python pipeline over 3000 readings (input batches of 50) whose window stage makes a
    window of each, with the test sink taking them in batches of 10 and the bound given."""
    import iotstream
    produce(broker.bootstrap, readings(n=3000, sensors=30))
    folder = private_plugin_dir(tmp_path)
    shutil.copy2(SINK_SO, folder / "test_sink.so")
    os.chmod(folder / "test_sink.so", 0o755)
    return iotstream.Pipeline({
        "kafka": {"bootstrap.servers": broker.bootstrap},
        "input": {"topics": ["iot-readings"], "group_id": group, "max_batch": 50},
        "plugins": {"dir": str(folder)},
        "commit_interval_ms": 200,
        "stages": [{"plugin": "window", "config": {"size_s": 1, "grace_s": 0}}],
        "sinks": [{"plugin": "test_sink", "config": sink_config, "outputs": ["windows"], "max_batch": 10,
                   "max_queued_batches": max_queued_batches}]})


def test_a_slow_sink_holds_the_input_back_and_loses_nothing(tmp_path, broker):
    """Sink backpressure (docs/sinks.md#backpressure): a sink taking 10 ms per batch of 10 records
    against 3000 one-reading windows. With max_queued_batches 4 the pipeline waits for room
    whenever 4 batches wait; the most ever waiting stays near 4 (the bound plus what one input
    batch of 50 readings produces), not the ~300 batches an unbounded queue reaches, and every
    window reaches the sink and Kafka, and the group commits every reading."""
    out = tmp_path / "records.tsv"
    pipeline = bounded_sink_pipeline(tmp_path, broker, "sink-slow", {"file": str(out), "delay_ms": 10}, 4)
    pipeline.run_bounded(timeout=120)
    stats = pipeline.stats()
    pipeline.close()
    sink = stats["sinks"][0]
    assert sink["max_queued_batches"] == 4
    assert 4 <= sink["peak_unacknowledged"] <= 4 + 8, sink  # one input batch: <= 50 windows = 5 batches
    # It waited for the sink.
    assert stats["sink_backpressure"]["waits"] > 0, stats["sink_backpressure"]
    assert sink["acknowledged_records"] == sink["records"] == 3000 and sink["failed"] == 0, sink
    windows = consume_all(broker.bootstrap, "iot-windows", expect=3000)
    got = sorted(v for _, _, v in sink_lines(out, "windows"))
    assert len(got) == 3000 and got == sorted(v.decode() for _, v, _ in windows)
    offsets = committed_offsets(broker.bootstrap, "sink-slow")
    assert sum(o for o in offsets.values() if o > 0) == 3000, offsets


def test_a_stuck_sink_pauses_the_input_and_a_stop_still_returns(tmp_path, broker):
    """A sink that never acknowledges, max_queued_batches 1: after a second at the bound the
    pipeline pauses its input partitions (it keeps polling), reads nothing more, and a stop
    returns within its timeout, committing nothing the sink did not acknowledge."""
    import time
    pipeline = bounded_sink_pipeline(tmp_path, broker, "sink-stuck",
                                     {"file": str(tmp_path / "records.tsv"), "ack": False}, 1)
    pipeline.start()
    deadline = time.time() + 30
    while pipeline.stats()["sink_backpressure"]["input_pauses"] == 0:
        assert time.time() < deadline, pipeline.stats()
        time.sleep(0.1)
    held = pipeline.stats()["consumed"]
    time.sleep(2)
    stats = pipeline.stats()
    assert stats["running"] and stats["consumed"] == held < 3000, stats  # nothing more read
    assert stats["sinks"][0]["unacknowledged"] <= 1 + 5, stats["sinks"][0]
    started = time.time()
    pipeline.stop(timeout=3)
    assert time.time() - started < 20
    pipeline.close()
    offsets = committed_offsets(broker.bootstrap, "sink-stuck")
    assert all(o < 0 for o in offsets.values()), offsets


def test_sink_config_errors_name_the_key(tmp_path, broker):
    proc = run_with_sink(tmp_path, broker, "sink-bad", {"fiel": "x"}, timeout=60)
    assert proc.returncode != 0
    assert "sink 'test_sink'" in proc.stderr and "fiel" in proc.stderr, proc.stderr
