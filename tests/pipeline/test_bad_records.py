"""Bad input never crashes and never vanishes: every kind of bad record ends in the dead-letter
topic with its original bytes and a header naming the reason; the counters reconcile."""
import json
from collections import Counter

from conftest import consume_all, envelope, produce, run_host

GOOD = {"temperature": 21.5, "humidity": 40.0, "pressure": 1010.0, "battery_level": 80.0,
        "location": {"lat": 37.5, "lon": -121.5}}


def test_every_bad_record_is_dead_lettered_with_its_reason(broker, tmp_path):
    t = "2026-01-01T00:10:00Z"
    bad = {
        "not_json": b"this is not json {",
        "missing_sensor_id": json.dumps({"timestamp": t, "data": GOOD}),
        "missing_timestamp": json.dumps({"sensor_id": "s1", "data": GOOD}),
        "bad_timestamp": envelope("s1", "2026-13-45T99:00:00", GOOD),
        "wrong_type": envelope("s1", t, dict(GOOD, temperature="hot")),
        "missing_field": envelope("s1", t, {k: v for k, v in GOOD.items() if k != "temperature"}),
        "non_finite": envelope("s1", t, dict(GOOD, temperature=float("nan"))),  # Python writes NaN
        "too_large": envelope("s1", t, dict(GOOD, note="x" * 70000)),
        "sensor_id_too_long": envelope("s" * 257, t, GOOD),  # over decoder.max_sensor_id_bytes (256)
    }
    assert "NaN" in bad["non_finite"]
    records = [("s1", envelope("s1", t, GOOD))]
    records += [(f"bad-{reason}", value) for reason, value in bad.items()]
    # A late record: the watermark has moved an hour past its window (same sensor, same partition).
    records.append(("s1", envelope("s1", "2026-01-01T01:10:00Z", GOOD)))
    records.append(("s1", envelope("s1", "2026-01-01T00:00:01Z", GOOD)))
    # Everything keyed "s1" and "bad-*" may land anywhere; the late one needs s1's partition: keyed.
    produce(broker.bootstrap, records)

    summary_file = tmp_path / "summary.json"
    run_host("--bootstrap", broker.bootstrap, "--bounded", "--group", "bad", "--window-size", "60",
             "--grace", "5", "--show-windows", "0", "--summary-json", str(summary_file))
    summary = json.loads(summary_file.read_text())["pipeline"]

    dlq = consume_all(broker.bootstrap, "iot-dlq", expect=len(bad) + 1)
    by_reason = {h["iotstream.reason"].decode(): (k, v, h) for k, v, h in dlq}
    assert Counter(h["iotstream.reason"].decode() for _, _, h in dlq) == Counter(list(bad) + ["late"])
    for reason, value in bad.items():
        key, original, headers = by_reason[reason]
        expected = value if isinstance(value, bytes) else value.encode()
        assert original == expected, f"{reason}: the original bytes must be kept"
        assert key == f"bad-{reason}"
        assert headers["iotstream.source"].startswith(b"iot-readings:")
    assert b"temperature" in by_reason["wrong_type"][2]["iotstream.detail"]
    assert b"temperature" in by_reason["missing_field"][2]["iotstream.detail"]
    assert b"ms" in by_reason["late"][2]["iotstream.detail"]

    assert summary["consumed"] == len(records)
    assert summary["decoded"] == 3
    assert summary["dead_lettered"]["decoder"] == len(bad)
    assert summary["dead_lettered"]["stages"] == 1
    assert summary["consumed"] == summary["decoded"] + summary["dead_lettered"]["decoder"]
    assert summary["dead_lettered"]["by_reason"] == dict(Counter(list(bad) + ["late"]))
