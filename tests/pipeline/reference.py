"""An independent model of what the pipeline must output, written from the specification
(the seed's StreamProcessor, with per-partition watermarks and grace), not from the C++ code."""
import math
from collections import defaultdict

SEED_RULES = [
    ("temperature_out_of_range", "temperature", 40.0, 0.0),
    ("humidity_out_of_range", "humidity", 95.0, 5.0),
    ("low_battery", "battery_level", None, 10.0),
]


def rule_hits(data):
    hits = []
    for name, field, above, below in SEED_RULES:
        v = data.get(field)
        if v is None:
            continue
        if (above is not None and v > above) or (below is not None and v < below):
            hits.append((name, v))
    return hits


def sample_std(values):
    if len(values) < 2:
        return 0.0
    mean = sum(values) / len(values)
    return math.sqrt(sum((x - mean) ** 2 for x in values) / (len(values) - 1))


def tumbling_windows(records_by_partition, size_s, grace_s):
    """records_by_partition: {partition: [(sensor_id, event_ms, data), ...] in offset order}.
    Returns (windows, late) where windows maps (sensor, window_start_s) -> result dict and late
    lists (sensor, event_ms)."""
    size_ms, grace_ms = size_s * 1000, grace_s * 1000
    members = defaultdict(list)
    late = []
    for _partition, records in records_by_partition.items():
        watermark = None
        for sensor, ts, data in records:
            start = (ts // size_ms) * size_ms
            if watermark is not None and start + size_ms + grace_ms <= watermark:
                late.append((sensor, ts))
            else:
                members[(sensor, start // 1000)].append(data)
            watermark = ts if watermark is None else max(watermark, ts)
    windows = {}
    for (sensor, start), datas in members.items():
        result = {"sensor_id": sensor, "window_start": start, "window_end": start + size_s,
                  "sample_count": len(datas)}
        for field, with_std in (("temperature", True), ("humidity", False), ("pressure", False)):
            values = [d[field] for d in datas]
            stats = {"min": min(values), "max": max(values), "avg": sum(values) / len(values)}
            if with_std:
                stats["std"] = sample_std(values)
            result[field] = stats
        result["anomalies"] = sorted({name for d in datas for name, _ in rule_hits(d)})
        windows[(sensor, start)] = result
    return windows, late


def assert_window_equal(actual, expected, tol=1e-9):
    assert actual["sensor_id"] == expected["sensor_id"]
    assert actual["window_start"] == expected["window_start"]
    assert actual["window_end"] == expected["window_end"]
    assert actual["sample_count"] == expected["sample_count"], (actual, expected)
    for field in ("temperature", "humidity", "pressure"):
        for stat, value in expected[field].items():
            got = actual[field][stat]
            assert abs(got - value) <= tol * max(1.0, abs(value)), (field, stat, got, value, actual)
    assert sorted(actual["anomalies"]) == expected["anomalies"], (actual, expected)


def expected_alerts(rows):
    """rows: [(sensor_id, event_ms, data)]. The alerts the seed's rules must raise, one per
    (sensor, rule, event time) hit, as a Counter."""
    from collections import Counter
    return Counter((sensor, name, ts) for sensor, ts, data in rows for name, _ in rule_hits(data))


def readings_per_sensor(rows):
    """How many readings each sensor sent: what its aggregate sample counts must sum to."""
    from collections import Counter
    return Counter(sensor for sensor, _ts, _data in rows)
