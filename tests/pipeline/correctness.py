"""Helpers of the correctness tests (issue 12): inputs with known anomalies, readings that close
every partition's windows, and checks of windows, aggregates and alerts against the model in
reference.py. Waits are on conditions (records present, log lines), never fixed sleeps."""
import json
import os
import random
import shutil
import subprocess
import time
from collections import Counter, defaultdict

from confluent_kafka import Consumer, Producer, TopicPartition

from conftest import PLUGIN_DIR, SOURCE, consume_all, envelope, windows_of
from reference import assert_window_equal, expected_alerts, readings_per_sensor, tumbling_windows

T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z
HOT = 45.0  # above temperature_out_of_range's 40
CLOSER_PREFIX = "closer-"
# Short group timeouts, so a joining or lost member is handled in seconds.
FAST_GROUP = {"session.timeout.ms": 6000, "heartbeat.interval.ms": 500}


def with_hot_readings(rows, share, seed):
    """A copy of rows where about `share` of the readings are hot (one alert each)."""
    rng = random.Random(seed)
    return [(s, ts, dict(d, temperature=HOT) if rng.random() < share else d) for s, ts, d in rows]


def model(rows, size_s, grace_s):
    """The expected windows of in-order rows; one sensor's rows share a partition."""
    by_sensor = defaultdict(list)
    for row in rows:
        by_sensor[row[0]].append(row)
    windows, late = tumbling_windows(by_sensor, size_s=size_s, grace_s=grace_s)
    assert not late, "the generated inputs are in order"
    return windows


def produce_rows(bootstrap, rows, topic="iot-readings"):
    """Produces (sensor, ts, data) rows keyed by sensor; returns {(sensor, ts): (partition, offset)}."""
    p = Producer({"bootstrap.servers": bootstrap, "partitioner": "murmur2_random", "linger.ms": 5})
    where, failures = {}, []

    def delivered(err, msg, row):
        if err is not None:
            failures.append(err)
        else:
            where[row] = (msg.partition(), msg.offset())

    for sensor, ts, data in rows:
        p.produce(topic, key=sensor, value=envelope(sensor, ts, data),
                  on_delivery=lambda err, msg, row=(sensor, ts): delivered(err, msg, row))
        p.poll(0)
    assert p.flush(60) == 0
    assert not failures, failures[:3]
    return where


def produce_closers(bootstrap, partitions, event_ms, topic="iot-readings"):
    """One reading per partition at event_ms: moves every partition's watermark past the test's
    windows, so they close by event time on whichever member owns the partition. Closer sensors'
    own windows are not part of any check."""
    p = Producer({"bootstrap.servers": bootstrap})
    good = {"temperature": 21.0, "humidity": 40.0, "pressure": 1010.0, "battery_level": 80.0}
    for partition in range(partitions):
        sensor = f"{CLOSER_PREFIX}{partition}-{event_ms}"
        p.produce(topic, key=sensor, value=envelope(sensor, event_ms, good), partition=partition)
    assert p.flush(30) == 0


def sensor_windows(records):
    return [w for w in windows_of(records) if not w["sensor_id"].startswith(CLOSER_PREFIX)]


def wait_windows(bootstrap, expected_keys, timeout=60.0):
    """Polls iot-windows until every expected (sensor, window_start) is there; returns the test
    windows then (or at the timeout, for the caller's check to report what is missing)."""
    deadline = time.time() + timeout
    while True:
        windows = sensor_windows(consume_all(bootstrap, "iot-windows", timeout=5, idle=0.5))
        if {(w["sensor_id"], w["window_start"]) for w in windows} >= set(expected_keys) or time.time() > deadline:
            return windows
        time.sleep(0.3)


def assert_windows(actual, expected, repeats_allowed=False):
    """Every expected window is present and equal to the model. Exactly once, unless repeats are
    allowed (after a SIGKILL: at-least-once), and then every copy is identical and complete."""
    counts = Counter()
    for w in actual:
        key = (w["sensor_id"], w["window_start"])
        assert key in expected, f"unexpected window {key}: {w}"
        assert_window_equal(w, expected[key])
        counts[key] += 1
    missing = sorted(set(expected) - set(counts))
    assert not missing, f"{len(missing)} of {len(expected)} windows never emitted, e.g. {missing[:3]}"
    if not repeats_allowed:
        twice = {k: c for k, c in counts.items() if c > 1}
        assert not twice, f"{len(twice)} windows emitted more than once, e.g. {sorted(twice.items())[:3]}"


def aggregate_counts(bootstrap):
    """Sum of sample_count per sensor over every aggregate record (closers left out)."""
    totals = Counter()
    for _k, v, _h in consume_all(bootstrap, "iot-aggregates", timeout=5, idle=0.5):
        record = json.loads(v)
        record = record.get("data", record)
        if not record["sensor_id"].startswith(CLOSER_PREFIX):
            totals[record["sensor_id"]] += record["sample_count"]
    return totals


def alert_counts(bootstrap):
    """Counter of (sensor, rule, event_time_ms) over iot-alerts (closers left out)."""
    alerts = Counter()
    for k, v, _h in consume_all(bootstrap, "iot-alerts", timeout=5, idle=0.5):
        a = json.loads(v)
        if "rule" in a and not a["sensor_id"].startswith(CLOSER_PREFIX):
            alerts[(a["sensor_id"], a["rule"], a["event_time_ms"])] += 1
    return alerts


def assert_aggregates_and_alerts(bootstrap, rows, exact=True):
    """Aggregates count each reading once and each hot reading raised one alert (exact=True,
    graceful operations), or at least that (exact=False: after a SIGKILL)."""
    want_counts, got_counts = readings_per_sensor(rows), aggregate_counts(bootstrap)
    want_alerts, got_alerts = expected_alerts(rows), alert_counts(bootstrap)
    if exact:
        wrong = {s: (got_counts[s], n) for s, n in want_counts.items() if got_counts[s] != n}
        assert not wrong, f"aggregate sample counts (got, readings) differ for {len(wrong)} sensors: {sorted(wrong.items())[:5]}"
        assert got_alerts == want_alerts, (f"alerts differ: extra {sorted((got_alerts - want_alerts).items())[:5]}, "
                                           f"missing {sorted((want_alerts - got_alerts).items())[:5]}")
    else:
        short = {s: (got_counts[s], n) for s, n in want_counts.items() if got_counts[s] < n}
        assert not short, f"readings never aggregated: {sorted(short.items())[:5]}"
        missing = want_alerts - got_alerts
        assert not missing, f"alerts missing: {sorted(missing.items())[:5]}"
    assert set(got_counts) <= set(want_counts), sorted(set(got_counts) - set(want_counts))[:5]
    assert set(got_alerts) <= set(want_alerts), sorted(set(got_alerts) - set(want_alerts))[:5]


def host_args(bootstrap, group, config_path, window_s=60, grace_s=5, idle_ms=600_000, aggregate_ms=500):
    """Flags of a streaming iotstream-host group member. The idle timeout is long: windows close
    by event time (closers), so how long a test waits never changes what it emits."""
    return ["--bootstrap", bootstrap, "--no-generate", "--group", group, "--window-size", str(window_s),
            "--grace", str(grace_s), "--idle-timeout", str(idle_ms), "--aggregate-interval", str(aggregate_ms),
            "--show-windows", "0", "--log-level", "info", "--config", config_path]


def fast_config(tmp_path, name="fast", **pipeline):
    """A --config file with the fast group timeouts and any extra pipeline keys."""
    doc = {"pipeline": dict({"consumer": {"kafka": dict(FAST_GROUP)}}, **pipeline)}
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps(doc))
    return str(path)


def pipeline_config(bootstrap, group, window_s=60, grace_s=5, idle_ms=600_000, aggregate_ms=200, **extra):
    """A Python iotstream.Pipeline document: the default three stages, fast group timeouts."""
    doc = {"kafka": {"bootstrap.servers": bootstrap},
           "input": {"group_id": group},
           "stages": [{"plugin": "anomaly"},
                      {"plugin": "aggregate", "config": {"interval_ms": aggregate_ms}},
                      {"plugin": "window", "config": {"size_s": window_s, "grace_s": grace_s,
                                                      "idle_timeout_ms": idle_ms}}],
           "plugins": {"dir": str(PLUGIN_DIR)},
           "consumer": {"kafka": dict(FAST_GROUP)},
           "commit_interval_ms": 200}
    doc.update(extra)
    return doc


def wait_until(condition, timeout, what):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def committed_offsets(bootstrap, group, topic="iot-readings"):
    """{partition: committed offset (negative: none)} of `group` on `topic`."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False})
    try:
        md = c.list_topics(topic, timeout=10)
        parts = [TopicPartition(topic, p) for p in md.topics[topic].partitions]
        return {tp.partition: tp.offset for tp in c.committed(parts, timeout=10)}
    finally:
        c.close()


def private_plugin_dir(tmp_path, extra=()):
    """Copies of the built plugins in a folder only we may write (the loader refuses others)."""
    folder = tmp_path / "plugins"
    folder.mkdir(mode=0o755, exist_ok=True)
    os.chmod(folder, 0o755)
    for name in ("anomaly.so", "aggregate.so", "window.so", *extra):
        shutil.copy2(PLUGIN_DIR / name, folder / name)
        os.chmod(folder / name, 0o755)
    return folder


def replace_plugin(folder, name):
    """Hot replace: a new file (new inode) with the same code, renamed into place."""
    staged = folder / f".{name}.new"
    shutil.copy2(PLUGIN_DIR / name, staged)
    os.chmod(staged, 0o755)
    os.rename(staged, folder / name)


def build_rogue_plugin(folder):
    """Compiles fixtures/rogue_stage.c against the public header into folder/rogue.so."""
    out = folder / "rogue.so"
    subprocess.run(["cc", "-std=c99", "-Wall", "-Wextra", "-Werror", "-O1", "-shared", "-fPIC",
                    f"-I{SOURCE / 'core' / 'include'}", "-o", str(out),
                    str(SOURCE / "tests" / "pipeline" / "fixtures" / "rogue_stage.c")], check=True)
    os.chmod(out, 0o755)
    return out


