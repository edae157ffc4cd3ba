"""One test per confirmed defect of issue 12, each run with the shipped programs (iotstream-broker,
iotstream-host, the Python package) and checked against the independent model in reference.py.
ctest runs each defect as its own entry, pipeline.correctness.defect_<N> (pytest -k defect_<N>_);
the ones that fail on the code they were written against are DISABLED there until their fix."""
import json
import os
import subprocess
import time

import pytest
from confluent_kafka import Consumer, Producer

import iotstream
from conftest import (BROKER_BIN, HOST_BIN, PLUGIN_DIR, Broker, HostProcess, consume_all, envelope, produce,
                      readings, run_host, windows_of)
from correctness import (CLOSER_PREFIX, FAST_GROUP, HOT, T0, aggregate_counts, alert_counts,
                         assert_aggregates_and_alerts, assert_windows, build_rogue_plugin, committed_offsets,
                         fast_config, host_args, model, pipeline_config, private_plugin_dir, produce_closers,
                         produce_rows, replace_plugin, wait_until, wait_windows, with_hot_readings)

GOOD = {"temperature": 21.5, "humidity": 40.0, "pressure": 1010.0, "battery_level": 80.0}
HOUR_MS = 3_600_000


def half_window_rows(first_half, sensors=4, seed=7):
    """Readings every second for the first (or second) half of the window [T0, T0 + 60 s)."""
    start = T0 if first_half else T0 + 30_000
    return with_hot_readings(readings(sensors=sensors, start_ms=start, end_ms=start + 30_000, step_ms=1000),
                             share=0.05, seed=seed + first_half)


# ---- 1 ------------------------------------------------------------------------------------------

def test_defect_1_graceful_stop_then_restart_emits_each_window_once_and_complete(broker, tmp_path):
    """A member stopped gracefully mid-window, then a new member of the group: each window of
    [T0, T0 + 60 s) comes out once, with all 60 readings (not a partial one, then another)."""
    config = fast_config(tmp_path)
    part_a, part_b = half_window_rows(True), half_window_rows(False)
    produce_rows(broker.bootstrap, part_a)
    first = HostProcess(*host_args(broker.bootstrap, "d1", config))
    first.wait_consumed(len(part_a))
    assert first.stop() == 0, first.output()

    produce_rows(broker.bootstrap, part_b)
    produce_closers(broker.bootstrap, broker.partitions, T0 + HOUR_MS)
    second = HostProcess(*host_args(broker.bootstrap, "d1", config))
    expected = model(part_a + part_b, 60, 5)
    wait_windows(broker.bootstrap, expected)
    assert second.stop() == 0, second.output()
    assert_windows(sensor_windows_now(broker), expected)
    assert_aggregates_and_alerts(broker.bootstrap, part_a + part_b)


def sensor_windows_now(broker):
    return [w for w in windows_of(consume_all(broker.bootstrap, "iot-windows"))
            if not w["sensor_id"].startswith(CLOSER_PREFIX)]


# ---- 2 ------------------------------------------------------------------------------------------

def run_with_plugin_change(broker, tmp_path, group, change):
    """Half a window in, `change(folder, host)` is applied to the running member's plugin
    folder; then the second half. Returns the member (still running) and the rows."""
    folder = private_plugin_dir(tmp_path)
    part_a, part_b = half_window_rows(True), half_window_rows(False)
    produce_rows(broker.bootstrap, part_a)
    host = HostProcess(*host_args(broker.bootstrap, group, fast_config(tmp_path)), plugins=folder)
    host.wait_consumed(len(part_a))
    change(folder, host)
    produce_rows(broker.bootstrap, part_b)
    produce_closers(broker.bootstrap, broker.partitions, T0 + HOUR_MS)
    return host, part_a + part_b


def test_defect_2_hot_replacing_the_window_plugin_mid_window_never_splits_a_window(broker, tmp_path):
    def swap(folder, host):
        since = len(host.err_lines)
        replace_plugin(folder, "window.so")
        host.wait_log(lambda line: "replaced" in line and "window" in line, since=since)

    host, rows = run_with_plugin_change(broker, tmp_path, "d2-swap", swap)
    expected = model(rows, 60, 5)
    wait_windows(broker.bootstrap, expected, timeout=30)
    assert host.stop() == 0, host.output()
    assert_windows(sensor_windows_now(broker), expected)
    assert_aggregates_and_alerts(broker.bootstrap, rows)


def test_defect_2_removing_the_window_plugin_at_run_time_is_refused_and_loses_nothing(broker, tmp_path):
    def remove(folder, host):
        since = len(host.err_lines)
        os.unlink(folder / "window.so")
        # The loader notices within a few seconds and says something about it (before the fix:
        # "removed"; now a refusal). Waiting for that line is only pacing, not the check.
        try:
            host.wait_log(lambda line: "window" in line, since=since, timeout=10)
        except AssertionError:
            pass

    host, rows = run_with_plugin_change(broker, tmp_path, "d2-remove", remove)
    expected = model(rows, 60, 5)
    wait_windows(broker.bootstrap, expected, timeout=30)
    assert host.stop() == 0, host.output()
    assert_windows(sensor_windows_now(broker), expected)


# ---- 3 ------------------------------------------------------------------------------------------

def test_defect_3_replay_after_a_resumable_stop_counts_aggregates_and_alerts_once(broker):
    """A stop that leaves windows open (the next owner completes them) makes the next member
    replay from the window stage's restore point; aggregates and alerts already emitted for
    those readings must not be emitted again."""
    rows = [(f"s{i % 2}", T0 + 1000 * i, dict(GOOD, temperature=HOT if i == 3 else 20.0 + i))
            for i in range(6)]
    produce_rows(broker.bootstrap, rows)
    first = iotstream.Pipeline(pipeline_config(broker.bootstrap, "d3"))
    first.start()
    wait_until(lambda: sum(aggregate_counts(broker.bootstrap).values()) == len(rows)
               and sum(alert_counts(broker.bootstrap).values()) == 1, 30,
               "the first member's aggregates and alert")
    first.stop(close_windows=False)
    first.close()

    produce_closers(broker.bootstrap, broker.partitions, T0 + HOUR_MS)
    second = iotstream.Pipeline(pipeline_config(broker.bootstrap, "d3"))
    second.start()
    expected = model(rows, 60, 5)
    wait_windows(broker.bootstrap, expected)
    second.stop(close_windows=True)
    second.close()
    assert_windows(sensor_windows_now(broker), expected)
    assert_aggregates_and_alerts(broker.bootstrap, rows)


# ---- 4 ------------------------------------------------------------------------------------------

def test_defect_4_an_oversized_record_is_dead_lettered_truncated_and_the_pipeline_goes_on(tmp_path):
    """A ~1 MB record the broker accepted: its dead letter (original + headers) would exceed the
    producer's message.max.bytes. It must be kept as a prefix with the original size, and the
    readings around it processed."""
    broker = Broker(tmp_path, partitions=1)
    try:
        big = envelope("big", T0, dict(GOOD, note="x" * 1_000_000)).encode()
        p = Producer({"bootstrap.servers": broker.bootstrap, "message.max.bytes": 4_000_000})
        p.produce("iot-readings", key="big", value=big)
        assert p.flush(30) == 0
        rows = readings(sensors=3, start_ms=T0, end_ms=T0 + 20_000, step_ms=1000)
        produce_rows(broker.bootstrap, rows)

        for attempt in ("first", "restart"):  # today the restart stops at the same record again
            summary = tmp_path / f"{attempt}.json"
            proc = run_host("--bootstrap", broker.bootstrap, "--bounded", "--group", "d4", "--window-size", "60",
                            "--grace", "5", "--show-windows", "0", "--summary-json", str(summary), check=False)
            assert proc.returncode == 0, f"{attempt} run exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}"

        dlq = consume_all(broker.bootstrap, "iot-dlq")
        assert len(dlq) >= 1
        for key, value, headers in dlq:
            assert key == "big" and headers["iotstream.reason"] == b"too_large"
            assert len(value) < 1_000_000 and big.startswith(value), "a prefix of the original bytes"
            assert any(str(len(big)).encode() in v for v in headers.values()), f"original size in a header: {headers}"
        assert_windows(windows_of(consume_all(broker.bootstrap, "iot-windows")), model(rows, 60, 5),
                       repeats_allowed=True)  # two bounded runs of one group
    finally:
        broker.stop()


# ---- 5 ------------------------------------------------------------------------------------------

def test_defect_5_a_delivery_failure_found_on_revoke_is_never_committed_past():
    """Alerts fail permanently (injected Produce errors); the failure surfaces while a second
    member's join revokes partitions. Afterwards every failed alert's input must be either
    re-readable (committed offset at or before it), or its alert or a dead letter must exist."""
    with iotstream.Broker() as cluster:
        bootstrap = cluster.bootstrap
        # The inputs first: the injected errors hit every Produce request in the cluster.
        hot = [(f"hot-{i}", T0 + 1000, dict(GOOD, temperature=HOT)) for i in range(24)]
        where = produce_rows(bootstrap, hot)
        cluster.push_request_errors(0, 50, 29)  # Produce -> TOPIC_AUTHORIZATION_FAILED (permanent)
        doc = pipeline_config(bootstrap, "d5", commit_interval_ms=600_000)  # epochs seal only on revoke/stop
        doc["stages"] = [{"plugin": "anomaly"}]
        pipeline = iotstream.Pipeline(doc)
        pipeline.start()
        wait_until(lambda: pipeline.stats()["consumed"] >= len(hot) and settled_outputs(pipeline)
                   and pipeline.stats()["outputs"]["failed"] > 0, 30, "the failed alerts' delivery reports")

        second = Consumer({"bootstrap.servers": bootstrap, "group.id": "d5", "enable.auto.commit": False,
                           "partition.assignment.strategy": "cooperative-sticky", **FAST_GROUP})
        second.subscribe(["iot-readings"])
        wait_until(lambda: (second.poll(0.2), second.assignment())[1], 60, "the second member's assignment")
        try:
            pipeline.stop(close_windows=True)
        except iotstream.IotstreamError:
            pass  # stopping on the failure is one right answer
        pipeline.close()
        committed = {p: o for p, o in committed_offsets(bootstrap, "d5").items()}
        second.close()

        alerted = {k for k, _v, _h in consume_all(bootstrap, "iot-alerts")}
        dead = {k for k, _v, _h in consume_all(bootstrap, "iot-dlq")}
        lost = [(sensor, partition, offset) for (sensor, _ts), (partition, offset) in where.items()
                if sensor not in alerted and sensor not in dead and committed.get(partition, -1) > offset]
        assert not lost, f"alerts failed, yet their inputs were committed past: {sorted(lost)[:5]}"


def settled_outputs(pipeline):
    out = pipeline.stats()["outputs"]
    return out["sent"] == out["delivered"] + out["failed"]


# ---- 6 ------------------------------------------------------------------------------------------
# A refused window emit covered by the checkpoint: tests/plugins/correctness_test.cpp (the plugin
# reports its restore point; end to end, a refused emit also stops the pipeline through tick()).


# ---- 7 ------------------------------------------------------------------------------------------

YEAR_0000_MS = -62_167_219_200_000  # 0000-01-01T00:00:00.000Z
YEAR_9999_END_MS = 253_402_300_799_999  # 9999-12-31T23:59:59.999Z


def test_defect_7_the_documented_timestamp_range_holds_in_producer_decoder_and_windows(tmp_path):
    broker = Broker(tmp_path, partitions=1)
    try:
        producer = iotstream.Producer(broker.bootstrap)
        # In event-time order (one partition), so none is late: three windows of one reading.
        for ts in (YEAR_0000_MS, YEAR_9999_END_MS - 60_000, YEAR_9999_END_MS):
            producer.send("edge", GOOD, timestamp=ts)
        for outside in (YEAR_0000_MS - 1, YEAR_9999_END_MS + 1):
            with pytest.raises(ValueError, match="0000..9999"):
                producer.send("edge", GOOD, timestamp=outside)
        producer.flush()
        producer.close()
        sent = [json.loads(v)["timestamp"] for _k, v, _h in consume_all(broker.bootstrap, "iot-readings")]
        assert sent == ["0000-01-01T00:00:00.000000Z", "9999-12-31T23:58:59.999000Z", "9999-12-31T23:59:59.999000Z"]

        summary = tmp_path / "summary.json"
        run_host("--bootstrap", broker.bootstrap, "--bounded", "--group", "d7", "--window-size", "60",
                 "--grace", "5", "--show-windows", "0", "--summary-json", str(summary))
        dlq = consume_all(broker.bootstrap, "iot-dlq")
        assert not dlq, [h.get("iotstream.reason") for _k, _v, h in dlq]
        got = sorted((w["window_start"], w["sample_count"]) for w in windows_of(consume_all(broker.bootstrap, "iot-windows")))
        assert got == [(YEAR_0000_MS // 1000, 1), (YEAR_9999_END_MS // 1000 // 60 * 60 - 60, 1),
                       (YEAR_9999_END_MS // 1000 // 60 * 60, 1)]
    finally:
        broker.stop()


# ---- 8 ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("key, value", [
    ("start_time_ms", 18446744073709551615),  # 2^64 - 1: wrapped to -1 ("unset")
    ("start_time_ms", 9223372036854775808),   # 2^63
    ("start_time_ms", 1e300),                 # an undefined cast
    ("start_offset", 1.5),                    # not an integer
    ("max_batch", 4294967297.0),
])
def test_defect_8_core_config_integers_out_of_range_or_not_integral_are_refused_by_name(key, value):
    doc = {"kafka": {"bootstrap.servers": "127.0.0.1:1"}, "input": {key: value}}
    with pytest.raises(iotstream.ConfigError, match=key):
        iotstream.Pipeline(doc)


@pytest.mark.parametrize("value", [18446744073709551615, 1e300, 2.5])
def test_defect_8_plugin_config_integers_are_refused_the_same_way(value):
    doc = {"kafka": {"bootstrap.servers": "127.0.0.1:1"},
           "stages": [{"plugin": "window", "config": {"size_s": value}}]}
    with pytest.raises(iotstream.IotstreamError, match="size_s"):
        iotstream.Pipeline(doc)


@pytest.mark.parametrize("flag, value", [("--window-size", "3000000000"), ("--window-size", "1.5"),
                                         ("--grace", "1e300"), ("--idle-timeout", "4294967296"),
                                         ("--partitions", "2147483648")])
def test_defect_8_host_integer_flags_out_of_range_or_not_integral_are_refused(flag, value):
    # `plugins` parses every flag, then only lists the plugins: nothing else can fail.
    proc = subprocess.run([str(HOST_BIN), "plugins", "--plugins", str(PLUGIN_DIR), flag, value],
                          capture_output=True, text=True, timeout=30)
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    assert flag in proc.stderr, proc.stderr


@pytest.mark.parametrize("flag, value", [("--max-body-bytes", "1.5"), ("--read-timeout-ms", "1e300"),
                                         ("--max-connections", "18446744073709551615"), ("--http-threads", "2.5"),
                                         ("--mqtt-clients", "2.5")])
def test_defect_8_gateway_integer_flags_go_through_the_same_conversion(flag, value):
    # The gateway's flags (HTTP and MQTT) are parsed by every command; they went through strtod
    # and a cast (1e300 -> an undefined int, 1.5 -> 1).
    proc = subprocess.run([str(HOST_BIN), "plugins", "--plugins", str(PLUGIN_DIR), flag, value],
                          capture_output=True, text=True, timeout=30)
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    assert flag in proc.stderr and "must be an integer" in proc.stderr, proc.stderr


@pytest.mark.parametrize("args", [["--brokers", "1.5"], ["--brokers", "17"], ["--topic", "t:1.5"],
                                  ["--topic", "t:99999999999999999999"], ["--topic", "t:0"]])
def test_defect_8_broker_integer_flags_go_through_the_same_conversion(args):
    proc = subprocess.run([str(BROKER_BIN), *args], capture_output=True, text=True, timeout=30)
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    assert args[0] in proc.stderr and "must be an integer" in proc.stderr, proc.stderr


# ---- 9 ------------------------------------------------------------------------------------------

def test_defect_9_a_batch_pointer_kept_past_process_is_refused_by_the_host(tmp_path):
    """The rogue stage keeps the batch pointer of process() and calls dead_letter() and
    report_anomaly() with it from tick(): both must be refused (the batch's records are gone)."""
    broker = Broker(tmp_path, partitions=1)
    try:
        folder = private_plugin_dir(tmp_path)
        build_rogue_plugin(folder)
        config = tmp_path / "rogue.json"
        config.write_text(json.dumps({"pipeline": {"stages": [
            {"plugin": "anomaly"}, {"plugin": "window", "config": {"size_s": 60}}, {"plugin": "rogue"}]}}))
        produce(broker.bootstrap, [("rogue", envelope("rogue", T0, GOOD)), ("other", envelope("other", T0, GOOD))])
        proc = run_host("--bootstrap", broker.bootstrap, "--bounded", "--group", "d9", "--show-windows", "0",
                        "--config", str(config), "--plugins", str(folder), check=False)
        assert proc.returncode == 0, f"exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}"
        alerts = consume_all(broker.bootstrap, "iot-alerts")
        reports = [json.loads(v) for k, v, _h in alerts if k == "rogue-report"]
        assert reports, "the rogue stage's tick() ran and reported"
        assert reports[0]["dead_letter"] != 0 and reports[0]["report_anomaly"] != 0, reports[0]
        assert not [1 for k, _v, _h in alerts if k != "rogue-report"], "no alert from a stale batch"
        assert not consume_all(broker.bootstrap, "iot-dlq"), "no dead letter from a stale batch"
    finally:
        broker.stop()


# ---- 10 -----------------------------------------------------------------------------------------

def test_defect_10_stats_say_not_running_once_the_pipeline_thread_died(tmp_path):
    broker = Broker(tmp_path, partitions=1)
    try:
        folder = private_plugin_dir(tmp_path)
        build_rogue_plugin(folder)
        doc = pipeline_config(broker.bootstrap, "d10")
        doc["stages"] = [{"plugin": "rogue", "config": {"mode": "fail_tick"}}]
        doc["plugins"] = {"dir": str(folder)}
        pipeline = iotstream.Pipeline(doc)
        pipeline.start()
        produce_rows(broker.bootstrap, [("rogue", T0, GOOD)])
        wait_until(lambda: pipeline.stats()["failed"], 30, "the rogue tick() to stop the pipeline")
        stats = pipeline.stats()
        assert stats["running"] is False, stats
        with pytest.raises(iotstream.IotstreamError):
            pipeline.stop()
        pipeline.close()
    finally:
        broker.stop()


CONCURRENT_STOP = """
import json, sys, threading, iotstream
pipeline = iotstream.Pipeline(json.loads(sys.argv[1]))
pipeline.start()
while pipeline.stats()["consumed"] < 1:
    threading.Event().wait(0.05)
barrier, errors = threading.Barrier(2), []
def stop():
    barrier.wait()
    try:
        pipeline.stop(close_windows=True)
    except Exception as e:
        errors.append(repr(e))
threads = [threading.Thread(target=stop) for _ in range(2)]
[t.start() for t in threads]
[t.join() for t in threads]
print(json.dumps({"errors": errors, "running": pipeline.stats()["running"]}))
"""


def test_defect_10_two_threads_stopping_one_pipeline_both_return(broker):
    """Both of two concurrent stop() calls return, without error; run in a child process, as
    the defect can hang or crash it."""
    produce_rows(broker.bootstrap, [("s1", T0, GOOD)])
    for attempt in range(3):  # the race needs both calls inside stop() at once
        doc = json.dumps(pipeline_config(broker.bootstrap, f"d10-stop-{attempt}"))
        try:
            child = subprocess.run(["/usr/bin/python3", "-c", CONCURRENT_STOP, doc], capture_output=True,
                                   text=True, timeout=60)
        except subprocess.TimeoutExpired:
            pytest.fail("a concurrent stop() hung")
        assert child.returncode == 0, child.stderr[-3000:]
        result = json.loads(child.stdout.strip().splitlines()[-1])
        assert result == {"errors": [], "running": False}, result


# ---- 11 -----------------------------------------------------------------------------------------

def member_events(host, since):
    return [line for line in host.err_lines[since:] if "assigned" in line or "revoked" in line]


def test_defect_11_survivors_take_a_killed_members_partitions_incrementally_and_fast(tmp_path):
    """Three members on 6 partitions, one SIGKILLed: the survivors own all 6 within the session
    timeout plus a bound, keep their own partitions (no revoke: cooperative, incremental), and
    process input on the dead member's partitions."""
    broker = Broker(tmp_path, partitions=6)
    try:
        session_ms = FAST_GROUP["session.timeout.ms"]
        config = fast_config(tmp_path, stages=[{"plugin": "anomaly"}], commit_interval_ms=200)
        args = ["--bootstrap", broker.bootstrap, "--no-generate", "--group", "d11", "--show-windows", "0",
                "--log-level", "info", "--config", config]
        hosts = [HostProcess(*args) for _ in range(3)]
        first = [(f"s{i}", T0, GOOD) for i in range(120)]
        produce_rows(broker.bootstrap, first)
        wait_until(lambda: sum(h.consumed for h in hosts) >= len(first) and all(h.consumed for h in hosts), 60,
                   "three members each owning partitions")
        victim, survivors = hosts[0], hosts[1:]
        marks = [len(h.err_lines) for h in survivors]
        victim.kill()
        killed = time.time()
        second = [(f"s{i}", T0 + 1000, GOOD) for i in range(120)]
        produce_rows(broker.bootstrap, second)
        end = {p: o + 1 for p, o in max_offsets(broker.bootstrap).items()}
        wait_until(lambda: {p: o for p, o in committed_offsets(broker.bootstrap, "d11").items() if p in end} == end,
                   session_ms / 1000 + 60,
                   "the group to commit every partition's end")
        took = time.time() - killed
        events = [member_events(h, m) for h, m in zip(survivors, marks)]
        for h in survivors:
            assert h.stop() == 0, h.output()
        report = f"takeover took {took:.1f}s (session timeout {session_ms} ms); survivors' rebalance log: {events}"
        print(report)  # the measured number (pytest -s, or the ctest log on failure)
        assert not any("revoked" in line and "revoked 0 " not in line for e in events for line in e), report
        # The defect was a storm: survivors revoked their own partitions as lost and the group
        # rebalanced for minutes; the assertion above catches that at any speed. This bound only
        # says the storm is over: the mock completes each rebalance round after session.timeout.ms
        # - 1 s when the member count changed, and a cooperative takeover after an expiry takes 2-4
        # rounds (27.4 s seen on a clean CI run, all in 5 s rounds with no revoke).
        assert took <= session_ms / 1000 + 40, report
    finally:
        broker.stop()


def max_offsets(bootstrap):
    from confluent_kafka import TopicPartition
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "offsets-probe"})
    try:
        md = c.list_topics("iot-readings", timeout=10)
        out = {}
        for p in md.topics["iot-readings"].partitions:
            _low, high = c.get_watermark_offsets(TopicPartition("iot-readings", p), timeout=10)
            if high > 0:
                out[p] = high - 1
        return out
    finally:
        c.close()
