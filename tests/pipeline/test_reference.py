"""Window, aggregate and alert outputs of a bounded run equal an independent reference
computation, on generated data with out-of-order and late records (issue 5)."""
import json
import random
from collections import Counter, defaultdict
from datetime import datetime, timedelta, timezone

from conftest import consume_all, envelope, produce, run_host, windows_of
from reference import assert_window_equal, rule_hits, tumbling_windows

T0_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z


def iso(ms, style):
    dt = datetime.fromtimestamp(ms / 1000, tz=timezone.utc)
    if style == "z":
        return dt.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    if style == "naive":  # what the seed's datetime.utcnow().isoformat() writes
        return dt.replace(tzinfo=None).isoformat()
    if style == "offset":
        return dt.astimezone(timezone(timedelta(hours=2))).isoformat(timespec="milliseconds")
    return ms  # epoch milliseconds


def generate(n_records=24000, sensors=300, partitions=4, seed=7):
    rng = random.Random(seed)
    by_partition = defaultdict(list)
    produced = []
    for i in range(n_records):
        clock = T0_MS + i * 5  # 2 minutes of event time
        sensor = f"sensor_{rng.randrange(sensors)}"
        if rng.random() < 0.02:
            ts = clock - rng.randrange(12_000, 40_000)  # late (usually past the grace)
        else:
            ts = clock - rng.randrange(0, 1500)         # out of order within the grace
        data = {"temperature": round(rng.uniform(20, 35), 2), "humidity": round(rng.uniform(30, 80), 2),
                "pressure": round(rng.uniform(1000, 1020), 2), "battery_level": round(rng.uniform(15, 100), 1),
                "location": {"lat": round(rng.uniform(37, 38), 6), "lon": round(rng.uniform(-122, -121), 6)}}
        r = rng.random()
        if r < 0.01:
            data["temperature"] = round(rng.uniform(40.01, 50), 2)
        elif r < 0.02:
            data["humidity"] = round(rng.uniform(0, 4.9), 2)
        elif r < 0.03:
            data["battery_level"] = round(rng.uniform(0, 9.9), 1)
        style = rng.choice(["z", "naive", "offset", "epoch"])
        partition = int(sensor.split("_")[1]) % partitions
        by_partition[partition].append((sensor, ts, data))
        produced.append((partition, sensor, envelope(sensor, iso(ts, style), data)))
    return produced, by_partition


def produce_partitioned(bootstrap, produced):
    from confluent_kafka import Producer
    p = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5, "compression.type": "lz4"})
    for partition, key, value in produced:
        p.produce("iot-readings", key=key, value=value, partition=partition)
        p.poll(0)
    assert p.flush(60) == 0


def test_bounded_run_matches_reference(broker, tmp_path):
    produced, by_partition = generate()
    produce_partitioned(broker.bootstrap, produced)
    summary_file = tmp_path / "summary.json"
    run_host("--bootstrap", broker.bootstrap, "--bounded", "--group", "reference",
             "--window-size", "10", "--grace", "2", "--aggregate-interval", "3600000",
             "--show-windows", "0", "--summary-json", str(summary_file))
    summary = json.loads(summary_file.read_text())["pipeline"]

    expected_windows, expected_late = tumbling_windows(by_partition, size_s=10, grace_s=2)
    assert expected_late, "the data set must contain late records"

    # Windows: exactly the reference's, each once, equal to 1e-9.
    actual = windows_of(consume_all(broker.bootstrap, "iot-windows", expect=len(expected_windows)))
    keys = Counter((w["sensor_id"], w["window_start"]) for w in actual)
    assert max(keys.values()) == 1, "a window was emitted twice"
    assert set(keys) == set(expected_windows)
    for w in actual:
        assert_window_equal(w, expected_windows[(w["sensor_id"], w["window_start"])])

    # Late records: every one in the dead-letter topic with reason "late" and its lateness.
    dlq = consume_all(broker.bootstrap, "iot-dlq", expect=len(expected_late))
    reasons = Counter(h.get("iotstream.reason", b"").decode() for _, _, h in dlq)
    assert reasons == {"late": len(expected_late)}
    late_seen = sorted((k, json.loads(v)["sensor_id"]) for k, v, _ in dlq)
    assert late_seen == sorted((s, s) for s, _ in expected_late)
    assert all(b"ms" in h.get("iotstream.detail", b"") for _, _, h in dlq)

    # Alerts: one per rule hit on every decoded record (late ones too: rules run first).
    all_records = [rec for recs in by_partition.values() for rec in recs]
    expected_alerts = Counter((s, name, ts) for s, ts, d in all_records for name, _ in rule_hits(d))
    alerts = [json.loads(v) for _, v, _ in consume_all(broker.bootstrap, "iot-alerts",
                                                       expect=sum(expected_alerts.values()))]
    assert Counter((a["sensor_id"], a["rule"], a["event_time_ms"]) for a in alerts) == expected_alerts
    values = {(s, name, ts): v for s, ts, d in all_records for name, v in rule_hits(d)}
    for a in alerts:
        assert abs(a["value"] - values[(a["sensor_id"], a["rule"], a["event_time_ms"])]) < 1e-9

    # Aggregates (one interval covers the whole run): per-sensor counts and averages.
    per_sensor = defaultdict(list)
    for s, ts, d in all_records:
        per_sensor[s].append((ts, d))
    aggregates = [json.loads(v) for _, v, _ in consume_all(broker.bootstrap, "iot-aggregates",
                                                           expect=len(per_sensor))]
    assert sorted(a["sensor_id"] for a in aggregates) == sorted(per_sensor)
    for a in aggregates:
        readings = per_sensor[a["sensor_id"]]
        assert a["sample_count"] == len(readings)
        for field in ("temperature", "humidity", "pressure"):
            mean = sum(d[field] for _, d in readings) / len(readings)
            assert abs(a[f"avg_{field}"] - mean) < 1e-9
        latest = max(ts for ts, _ in readings)
        assert a["latest_timestamp"] == iso(latest, "z")

    # Counters reconcile: consumed = decoded + dead-lettered by the decoder.
    assert summary["consumed"] == len(produced)
    assert summary["consumed"] == summary["decoded"] + summary["dead_lettered"]["decoder"]
    assert summary["dead_lettered"]["stages"] == len(expected_late)
    assert summary["outputs"]["failed"] == 0
