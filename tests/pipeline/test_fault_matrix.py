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
from collections import Counter

import pytest
from confluent_kafka import Producer

import iotstream
from conftest import PLUGIN_DIR, consume_all, envelope, readings, windows_of
from correctness import (CLOSER_PREFIX, T0, alert_counts, aggregate_counts, model, pipeline_config,
                         produce_closers, wait_until, with_hot_readings)
from reference import expected_alerts, readings_per_sensor

PARTITIONS = 4
WINDOW_S, GRACE_S = 10, 2
HOUR_MS = 3_600_000
FAULT_S = 3.0  # how long a fault lasts: below the group's session.timeout.ms (6 s)

# Kafka protocol ApiKeys and error codes (librdkafka's rdkafka_protocol.h / rdkafka.h).
PRODUCE, FETCH, OFFSET_COMMIT, ADD_PARTITIONS_TO_TXN, END_TXN, TXN_OFFSET_COMMIT = 0, 1, 8, 24, 26, 28
NOT_LEADER_FOR_PARTITION, REQUEST_TIMED_OUT, COORDINATOR_NOT_AVAILABLE = 6, 7, 15


def nothing(_broker):
    pass


def request_errors(*pushes):
    def push(broker):
        for api_key, count, error in pushes:
            broker.push_request_errors(api_key, count, error)
    return push


# fault -> (start, end): each starts once the first half of the input is consumed, the second
# half is produced while it lasts, and it ends FAULT_S later (request errors: when the requests
# have used them up).
FAULTS = {
    "none": (nothing, nothing),
    "broker down, up": (lambda b: b.set_down(1, True), lambda b: b.set_down(1, False)),
    "Produce errors": (request_errors((PRODUCE, 50, NOT_LEADER_FOR_PARTITION), (PRODUCE, 50, REQUEST_TIMED_OUT)),
                       nothing),
    "Fetch errors": (request_errors((FETCH, 20, NOT_LEADER_FOR_PARTITION), (FETCH, 20, REQUEST_TIMED_OUT)), nothing),
    "OffsetCommit errors": (request_errors((OFFSET_COMMIT, 10, COORDINATOR_NOT_AVAILABLE),
                                           (TXN_OFFSET_COMMIT, 10, COORDINATOR_NOT_AVAILABLE)), nothing),
    "AddPartitionsToTxn/EndTxn errors": (request_errors((ADD_PARTITIONS_TO_TXN, 3, COORDINATOR_NOT_AVAILABLE),
                                                        (END_TXN, 3, COORDINATOR_NOT_AVAILABLE)), nothing),
    "RTT spike 2 s": (lambda b: b.set_rtt(1, 2000), lambda b: b.set_rtt(1, 0)),
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
    with iotstream.Broker(partitions=PARTITIONS) as broker:
        doc = pipeline_config(broker.bootstrap, f"faults-{mode}", window_s=WINDOW_S, grace_s=GRACE_S,
                              processing={"guarantee": mode}, commit_interval_ms=500)
        doc["plugins"] = {"dir": str(PLUGIN_DIR), "watch": False}
        with iotstream.Pipeline(doc, bootstrap=broker) as pipeline:
            pipeline.start()
            produce(broker.bootstrap, rows[:half])
            wait_until(lambda: pipeline.stats()["consumed"] >= half, 60, "the first half consumed")
            start, end = FAULTS[fault]
            start(broker)
            ending = threading.Timer(FAULT_S, end, [broker])
            ending.start()
            produce(broker.bootstrap, rows[half:])  # a broker down: delivered once it is up
            ending.join()
            produce_closers(broker.bootstrap, PARTITIONS, T0 + HOUR_MS)
            expected = model(rows, WINDOW_S, GRACE_S)

            def all_windows():
                got = {(w["sensor_id"], w["window_start"]) for w in windows_of(
                    consume_all(broker.bootstrap, "iot-windows", timeout=5, idle=0.3))}
                return set(expected) <= got or pipeline.stats()["failed"]
            wait_until(all_windows, 120, "every window of the model")
            stats = pipeline.stats()
            assert not stats["failed"], stats["error"]
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
