"""Shared fixtures for the end-to-end tests: a real iotstream-broker process, iotstream-host
runs, and clients we did not write (confluent-kafka) to produce inputs and read outputs, so
the checks do not trust iotstream's own client code."""
import json
import os
import signal
import subprocess
import time
import uuid
from pathlib import Path

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

BUILD = Path(os.environ.get("IOTSTREAM_BUILD_DIR", Path(__file__).resolve().parents[2] / "build"))
BROKER_BIN = BUILD / "host_example" / "iotstream-broker"
HOST_BIN = BUILD / "host_example" / "iotstream-host"
PLUGIN_DIR = BUILD / "plugins"
SOURCE = Path(__file__).resolve().parents[2]

TOPICS = ["iot-readings", "iot-windows", "iot-aggregates", "iot-alerts", "iot-dlq"]


class Broker:
    def __init__(self, tmp_path, partitions=4, extra_topics=()):
        bootstrap_file = tmp_path / "bootstrap"
        args = [str(BROKER_BIN), "--quiet", "--bootstrap-file", str(bootstrap_file)]
        for t in list(TOPICS) + list(extra_topics):
            args += ["--topic", f"{t}:{partitions}"]
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, text=True)
        self.bootstrap = self.proc.stdout.readline().strip()
        assert self.bootstrap.startswith("127.0.0.1:"), self.bootstrap
        self.partitions = partitions

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=30)


@pytest.fixture
def broker(tmp_path):
    b = Broker(tmp_path)
    yield b
    b.stop()


def produce(bootstrap, records, topic="iot-readings"):
    """records: iterable of (key, value-bytes-or-str). Keyed with the Java client's murmur2,
    as iotstream's own producer does, so a sensor always lands on one partition."""
    p = Producer({"bootstrap.servers": bootstrap, "partitioner": "murmur2_random",
                  "linger.ms": 5, "compression.type": "lz4", "queue.buffering.max.messages": 1000000})
    failures = []

    def on_delivery(err, _msg):
        if err is not None:
            failures.append(err)

    n = 0
    for key, value in records:
        while True:
            try:
                p.produce(topic, key=key, value=value, on_delivery=on_delivery)
                break
            except BufferError:
                p.poll(0.05)
        n += 1
        if n % 10000 == 0:
            p.poll(0)
    assert p.flush(60) == 0
    assert not failures, failures[:3]
    return n


def consume_all(bootstrap, topic, expect=None, timeout=20.0, idle=1.5):
    """Everything currently in `topic` as a list of (key, value, headers). Stops when `expect`
    records were read, or when nothing arrived for `idle` seconds after the end offsets."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"check-{uuid.uuid4()}",
                  "auto.offset.reset": "earliest", "enable.auto.commit": False,
                  "enable.partition.eof": True})
    md = c.list_topics(topic, timeout=10)
    parts = [TopicPartition(topic, p, 0) for p in md.topics[topic].partitions]
    c.assign(parts)
    out, eof = [], set()
    deadline = time.time() + timeout
    last = time.time()
    while time.time() < deadline:
        m = c.poll(0.2)
        if m is None:
            if expect is None and len(eof) == len(parts) and time.time() - last > idle:
                break
            if expect is not None and len(out) >= expect and time.time() - last > idle:
                break
            continue
        if m.error():
            if m.error().code() == -191:  # _PARTITION_EOF
                eof.add(m.partition())
            continue
        eof.discard(m.partition())
        last = time.time()
        out.append((m.key().decode() if m.key() else None, m.value(), dict(m.headers() or [])))
    c.close()
    return out


def envelope(sensor_id, ts, data, message_id=None):
    return json.dumps({"sensor_id": sensor_id, "timestamp": ts, "data": data,
                       "message_id": message_id or str(uuid.uuid4())})


def run_host(*args, timeout=180, check=True):
    proc = subprocess.run([str(HOST_BIN), "--plugins", str(PLUGIN_DIR), *args],
                          capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"iotstream-host {' '.join(args)} exited {proc.returncode}\n"
                             f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}")
    return proc


def start_host(*args, plugins=None):
    # A command word (gateway, produce, ...) must come first.
    command = list(args[:1]) if args and not args[0].startswith("-") else []
    return subprocess.Popen([str(HOST_BIN), *command, "--plugins", str(plugins or PLUGIN_DIR), *args[len(command):]],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def windows_of(records):
    """Window results (the envelope's data) from iot-windows records."""
    return [json.loads(v)["data"] for _, v, _ in records]


class HostProcess:
    """A running iotstream-host whose progress lines are read on a thread, so a test can wait
    for it to have consumed a number of records."""

    def __init__(self, *args, plugins=None):
        import threading
        self.proc = start_host(*args, plugins=plugins)
        self.lines = []
        self.err_lines = []  # read on a thread too: a full stderr pipe would block the host
        self.consumed = 0
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self._err_reader = threading.Thread(target=self._read_err, daemon=True)
        self._err_reader.start()

    def _read(self):
        for line in self.proc.stdout:
            self.lines.append(line)
            fields = line.split()
            # progress rows: elapsed produced prod/s consumed cons/s backlog windows alerts dlq
            if len(fields) == 9 and fields[0].endswith("s") and fields[3].isdigit():
                self.consumed = int(fields[3])

    def _read_err(self):
        for line in self.proc.stderr:
            self.err_lines.append(line)

    def wait_log(self, predicate, timeout=30, since=0):
        """Waits for a stderr line (from index `since` on) for which predicate(line) holds;
        returns its index. Needs --log-level info (or debug) for the library's own lines."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            for i in range(since, len(self.err_lines)):
                if predicate(self.err_lines[i]):
                    return i
            if self.proc.poll() is not None:
                raise AssertionError("host exited while waiting for a log line:\n" + self.output())
            time.sleep(0.1)
        raise AssertionError(f"no matching log line within {timeout}s:\n" + self.output())

    def wait_consumed(self, n, timeout=60):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.consumed >= n:
                return
            if self.proc.poll() is not None:
                raise AssertionError("host exited early:\n" + self.output())
            time.sleep(0.2)
        raise AssertionError(f"host consumed {self.consumed} < {n} within {timeout}s:\n" + "".join(self.lines))

    def kill(self):
        self.proc.kill()
        self.proc.wait()

    def stop(self, timeout=90):
        """SIGTERM: graceful shutdown. Returns the exit code."""
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout=timeout)
        self._reader.join(timeout=5)
        return code

    def output(self):
        if self.proc.poll() is not None:
            self._err_reader.join(timeout=5)
        return "".join(self.lines) + "\nstderr:\n" + "".join(self.err_lines)


def fast_group_config(tmp_path):
    """A --config file with short group timeouts, so a killed member is noticed in seconds."""
    path = tmp_path / "fast-group.json"
    path.write_text(json.dumps({"pipeline": {"consumer": {"kafka": {
        "session.timeout.ms": 6000, "heartbeat.interval.ms": 500}}}}))
    return str(path)


def readings(sensors, start_ms, end_ms, step_ms, seed=1):
    """Deterministic in-order readings: every sensor reports every step_ms in [start, end)."""
    import random
    rng = random.Random(seed + start_ms)
    out = []
    for ts in range(start_ms, end_ms, step_ms):
        for s in range(sensors):
            data = {"temperature": round(rng.uniform(20, 35), 2), "humidity": round(rng.uniform(30, 80), 2),
                    "pressure": round(rng.uniform(1000, 1020), 2), "battery_level": round(rng.uniform(15, 100), 1)}
            out.append((f"sensor_{s}", ts, data))
    return out


def to_records(rows):
    return [(s, envelope(s, ts, d)) for s, ts, d in rows]


def check_windows_complete(actual, expected):
    """Every expected window is present; a window emitted more than once is emitted identically
    (at-least-once: a window may repeat after a crash, never partially)."""
    from reference import assert_window_equal
    seen = {}
    for w in actual:
        key = (w["sensor_id"], w["window_start"])
        assert key in expected, f"unexpected window {key}: {w}"
        assert_window_equal(w, expected[key])
        seen[key] = seen.get(key, 0) + 1
    missing = set(expected) - set(seen)
    assert not missing, f"{len(missing)} windows missing, e.g. {sorted(missing)[:3]}"
    return seen


def wait_committed(bootstrap, group, topic, timeout=60.0, stable_s=2.5):
    """Waits until `group` has committed every partition of `topic` that holds records, and its
    commits stayed the same for `stable_s` (several commit intervals): the member has caught up
    and its latest commit (with its latest watermark) has landed."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False})
    try:
        md = c.list_topics(topic, timeout=10)
        parts = [TopicPartition(topic, p) for p in md.topics[topic].partitions]
        with_data = [tp for tp in parts if c.get_watermark_offsets(tp, timeout=10)[1] > 0]
        deadline = time.time() + timeout
        previous, since = None, time.time()
        while time.time() < deadline:
            offsets = [tp.offset for tp in c.committed(with_data, timeout=10)]
            if offsets != previous:
                previous, since = offsets, time.time()
            elif all(o >= 0 for o in offsets) and time.time() - since >= stable_s:
                return
            time.sleep(0.3)
        raise AssertionError(f"group {group} did not settle its commits on {topic} within {timeout}s")
    finally:
        c.close()
