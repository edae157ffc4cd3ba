"""Fault matrix (issue 13): each fault injected through the embedded broker's fault injection
(iotstream.Broker: librdkafka's mock cluster, set_down / set_rtt / push_request_errors) while a
pipeline works, in both delivery modes. Prints a table (fault, mode, records in, windows out,
dead letters, duplicates, lost) and fails on any loss: every window of the model computed here
from the input rows, every reading in an aggregate, every alert. At least once allows
duplicates; exactly once allows them only where a transaction was aborted (the mock shows
aborted transactions to every reader, docs/pipeline.md#exactly-once).

Each row gets its own broker and group, in this process; the pipeline is iotstream.Pipeline.
Waits are on conditions (consumed counts, windows present), never fixed sleeps, except for how
long a fault lasts."""
import threading
from collections import Counter, namedtuple

import pytest
from confluent_kafka import Producer

import iotstream
from conftest import PLUGIN_DIR, consume_all, envelope, readings, windows_of
from correctness import (CLOSER_PREFIX, T0, alert_counts, aggregate_counts, build_rogue_plugin, committed_offsets,
                         model, pipeline_config, private_plugin_dir, produce_closers, wait_until, with_hot_readings)
from reference import expected_alerts, readings_per_sensor

PARTITIONS = 4
WINDOW_S, GRACE_S = 10, 2
HOUR_MS = 3_600_000
FAULT_S = 3.0  # how long a fault lasts: below the group's session.timeout.ms (6 s)

# Kafka protocol ApiKeys and error codes (librdkafka's rdkafka_protocol.h / rdkafka.h).
PRODUCE, FETCH, OFFSET_COMMIT, ADD_PARTITIONS_TO_TXN, END_TXN, TXN_OFFSET_COMMIT = 0, 1, 8, 24, 26, 28
JOIN_GROUP, SYNC_GROUP, INIT_PRODUCER_ID = 11, 14, 22
NOT_LEADER_FOR_PARTITION, REQUEST_TIMED_OUT, COORDINATOR_NOT_AVAILABLE = 6, 7, 15
REBALANCE_IN_PROGRESS = 27
TOPICS = ("iot-readings", "iot-windows", "iot-aggregates", "iot-alerts", "iot-dlq")


def nothing(_broker, _group):
    pass


def request_errors(*pushes):
    def push(broker, _group):
        for api_key, count, error in pushes:
            broker.push_request_errors(api_key, count, error)
    return push


def leaders(broker_id):
    """Every partition of the pipeline's topics led by `broker_id` (-1: by none)."""
    def move(broker, _group):
        for topic in TOPICS:
            for partition in range(PARTITIONS):
                broker.set_partition_leader(topic, partition, broker_id)
    return move


# A fault: `start(broker, group)` runs once the first half of the input is consumed (or, `before_start`, before
# the pipeline starts: faults of joining the group and of starting the producers), the second
# half is produced while it lasts, and `end` runs FAULT_S later (request errors end when the
# requests have used them up). `brokers`: the embedded cluster's size.
Fault = namedtuple("Fault", "start end brokers before_start", defaults=(nothing, 1, False))
FAULTS = {
    "none": Fault(nothing),
    "broker down, up": Fault(lambda b, _: b.set_down(1, True), lambda b, _: b.set_down(1, False)),
    "Produce errors": Fault(request_errors((PRODUCE, 50, NOT_LEADER_FOR_PARTITION), (PRODUCE, 50, REQUEST_TIMED_OUT))),
    "Fetch errors": Fault(request_errors((FETCH, 20, NOT_LEADER_FOR_PARTITION), (FETCH, 20, REQUEST_TIMED_OUT))),
    "OffsetCommit errors": Fault(request_errors((OFFSET_COMMIT, 10, COORDINATOR_NOT_AVAILABLE),
                                                (TXN_OFFSET_COMMIT, 10, COORDINATOR_NOT_AVAILABLE))),
    "AddPartitionsToTxn/EndTxn errors": Fault(request_errors((ADD_PARTITIONS_TO_TXN, 3, COORDINATOR_NOT_AVAILABLE),
                                                             (END_TXN, 3, COORDINATOR_NOT_AVAILABLE))),
    "RTT spike 2 s": Fault(lambda b, _: b.set_rtt(1, 2000), lambda b, _: b.set_rtt(1, 0)),
    # Every partition of every topic moves to another broker, twice: clients follow the
    # NOT_LEADER answers and the metadata; the records stay (the mock keeps one log per partition).
    "partition leaders moved": Fault(leaders(2), leaders(3), brokers=3),
    "partitions without a leader 3 s": Fault(leaders(-1), leaders(1), brokers=3),
    "group coordinator moved": Fault(lambda b, group: b.set_coordinator("group", group, 2), brokers=3),
    "JoinGroup/SyncGroup errors": Fault(request_errors((JOIN_GROUP, 3, COORDINATOR_NOT_AVAILABLE),
                                                       (SYNC_GROUP, 2, REBALANCE_IN_PROGRESS)), before_start=True),
    "InitProducerId errors": Fault(request_errors((INIT_PRODUCER_ID, 3, COORDINATOR_NOT_AVAILABLE)),
                                   before_start=True),
}
MODES = ["at_least_once", "exactly_once"]
TABLE = []


def produce(bootstrap, rows):
    p = Producer({"bootstrap.servers": bootstrap, "partitioner": "murmur2_random", "linger.ms": 5,
                  "message.timeout.ms": 120000})
    failures = []
    for sensor, ts, data in rows:
        p.produce("iot-readings", key=sensor, value=envelope(sensor, ts, data),
                  on_delivery=lambda err, _m: failures.append(err) if err else None)
        p.poll(0)
    assert p.flush(120) == 0 and not failures, failures[:3]


def count_outputs(bootstrap, rows):
    expected = model(rows, WINDOW_S, GRACE_S)
    windows = [w for w in windows_of(consume_all(bootstrap, "iot-windows", timeout=10, idle=0.5))
               if not w["sensor_id"].startswith(CLOSER_PREFIX)]
    copies = Counter((w["sensor_id"], w["window_start"]) for w in windows)
    alerts, want_alerts = alert_counts(bootstrap), expected_alerts(rows)
    aggregated, want_readings = aggregate_counts(bootstrap), readings_per_sensor(rows)
    lost = (len(set(expected) - set(copies)) + sum((want_alerts - alerts).values())
            + sum(max(0, n - aggregated[s]) for s, n in want_readings.items()))
    duplicates = (sum(c - 1 for c in copies.values()) + sum((alerts - want_alerts).values())
                  + sum(max(0, aggregated[s] - n) for s, n in want_readings.items()))
    dead = len(consume_all(bootstrap, "iot-dlq", timeout=5, idle=0.5))
    return {"windows": len(copies), "expected_windows": len(expected), "dead_letters": dead,
            "duplicates": duplicates, "lost": lost}


def wait_for_every_window(broker, pipeline, expected):
    """Waits until iot-windows holds every (sensor, window) of `expected`; fails at once if the
    pipeline stopped with an error."""
    def all_windows():
        got = {(w["sensor_id"], w["window_start"]) for w in windows_of(
            consume_all(broker.bootstrap, "iot-windows", timeout=5, idle=0.3))}
        return set(expected) <= got or pipeline.stats()["failed"]
    wait_until(all_windows, 120, "every window of the model")
    stats = pipeline.stats()
    assert not stats["failed"], stats["error"]


@pytest.fixture(scope="module", autouse=True)
def matrix_table(request):
    """Prints the table once every row ran, past pytest's output capture (ctest's log shows it)."""
    yield
    with request.config.pluginmanager.get_plugin("capturemanager").global_and_fixture_disabled():
        print_table()


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("fault", list(FAULTS))
def test_fault(fault, mode):
    rows = with_hot_readings(readings(sensors=8, start_ms=T0, end_ms=T0 + 40_000, step_ms=500), share=0.05, seed=4)
    half = len(rows) // 2
    spec = FAULTS[fault]
    with iotstream.Broker(partitions=PARTITIONS, brokers=spec.brokers) as broker:
        group = f"faults-{mode}"
        doc = pipeline_config(broker.bootstrap, group, window_s=WINDOW_S, grace_s=GRACE_S,
                              processing={"guarantee": mode}, commit_interval_ms=500)
        doc["plugins"] = {"dir": str(PLUGIN_DIR), "watch": False}
        with iotstream.Pipeline(doc, bootstrap=broker) as pipeline:
            if spec.before_start:
                spec.start(broker, group)
            pipeline.start()
            produce(broker.bootstrap, rows[:half])
            wait_until(lambda: pipeline.stats()["consumed"] >= half, 60, "the first half consumed")
            if not spec.before_start:
                spec.start(broker, group)
            ending = threading.Timer(FAULT_S, spec.end, [broker, group])
            ending.start()
            produce(broker.bootstrap, rows[half:])  # a broker down: delivered once it is up
            ending.join()
            produce_closers(broker.bootstrap, PARTITIONS, T0 + HOUR_MS)
            wait_for_every_window(broker, pipeline, model(rows, WINDOW_S, GRACE_S))
            pipeline.stop(close_windows=True)
            stats = pipeline.stats()
        counts = count_outputs(broker.bootstrap, rows)
    aborted = stats.get("transactions", {}).get("aborted", 0)
    TABLE.append((fault, mode, len(rows), counts["windows"], counts["dead_letters"], counts["duplicates"],
                  counts["lost"], aborted))
    assert counts["lost"] == 0, counts
    assert counts["dead_letters"] == 0, counts
    if mode == "exactly_once" and aborted == 0:
        assert counts["duplicates"] == 0, counts


def print_table():
    print("\n| fault | mode | records in | windows out | dead letters | duplicates | lost | aborted txns |")
    print("|---|---|---|---|---|---|---|---|")
    for row in TABLE:
        print("| " + " | ".join(str(x) for x in row) + " |")


@pytest.mark.parametrize("mode", MODES)
def test_a_stage_whose_process_fails_stops_the_pipeline_and_loses_nothing(tmp_path, mode):
    """The failing-stage policy (docs/pipeline.md#a-stage-that-fails): a stage whose process()
    fails, on every try, stops the pipeline with an error naming the plugin file, the callback
    and the plugin's reason; nothing past the refused batch is committed, so the pipeline started
    again with the stage fixed (here: left out) computes every window of the input."""
    rows = readings(sensors=8, start_ms=T0, end_ms=T0 + 40_000, step_ms=500)
    half = len(rows) // 2
    trigger = ("rogue", T0 + 20_000, rows[0][2])
    folder = private_plugin_dir(tmp_path)
    build_rogue_plugin(folder)
    group = f"failing-stage-{mode}"
    with iotstream.Broker(partitions=PARTITIONS) as broker:
        doc = pipeline_config(broker.bootstrap, group, window_s=WINDOW_S, grace_s=GRACE_S,
                              processing={"guarantee": mode}, commit_interval_ms=200)
        doc["stages"].insert(0, {"plugin": "rogue", "config": {"mode": "fail_process"}})
        doc["plugins"] = {"dir": str(folder), "watch": False}
        pipeline = iotstream.Pipeline(doc, bootstrap=broker)
        try:
            pipeline.start()
            produce(broker.bootstrap, rows[:half])
            wait_until(lambda: pipeline.stats()["consumed"] >= half, 60, "the first half consumed")
            delivered = []
            p = Producer({"bootstrap.servers": broker.bootstrap, "partitioner": "murmur2_random"})
            p.produce("iot-readings", key=trigger[0], value=envelope(*trigger),
                      on_delivery=lambda err, m: delivered.append((err, m.partition(), m.offset())))
            assert p.flush(30) == 0 and delivered[0][0] is None, delivered
            _, trigger_partition, trigger_offset = delivered[0]
            produce(broker.bootstrap, rows[half:])
            wait_until(lambda: pipeline.stats()["failed"], 60, "the failing stage to stop the pipeline")
            stats = pipeline.stats()
            assert stats["running"] is False, stats
            error = stats["error"]
            assert "rogue.so" in error and "process() failed" in error, error
            assert "refusing a batch with sensor 'rogue'" in error, error
            with pytest.raises(iotstream.IotstreamError):
                pipeline.stop()
        finally:
            pipeline.close()
        committed = committed_offsets(broker.bootstrap, group)
        assert committed[trigger_partition] <= trigger_offset, (committed, trigger_offset)

        # The operator's fix: the stage left out. The same group resumes from its commits.
        doc["stages"] = doc["stages"][1:]
        doc["plugins"] = {"dir": str(PLUGIN_DIR), "watch": False}
        all_rows = rows + [trigger]
        produce_closers(broker.bootstrap, PARTITIONS, T0 + HOUR_MS)
        expected = model(all_rows, WINDOW_S, GRACE_S)
        with iotstream.Pipeline(doc, bootstrap=broker) as pipeline:
            pipeline.start()
            wait_for_every_window(broker, pipeline, expected)
            pipeline.stop(close_windows=True)
        counts = count_outputs(broker.bootstrap, all_rows)
    TABLE.append(("stage process() fails, then restarted without it", mode, len(all_rows), counts["windows"],
                  counts["dead_letters"], counts["duplicates"], counts["lost"], "-"))
    assert counts["lost"] == 0, counts
    assert counts["dead_letters"] == 0, counts
