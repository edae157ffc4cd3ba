"""Pipeline results and read_frame decoded into columns in C++ (issue 16): exactly the model's
windows and alerts, computed here from the input readings; and the same frames, column for
column, as the per-record Python decoding (envelope_row + rows_to_frame) they replace."""
import math

import numpy as np
import pandas as pd
import pytest

import iotstream
from iotstream._convert import envelope_row, rows_to_frame

T0 = 1_700_000_000_000  # a multiple of the 2 s window size
WINDOW_MS = 2000
RULES = [("temperature_out_of_range", "temperature", 40, 0), ("humidity_out_of_range", "humidity", 95, 5),
         ("low_battery", "battery_level", None, 10)]  # the anomaly plugin's default rules


def readings():
    rows = []
    for k in range(12):  # 3 s of readings: two 2 s windows per sensor
        for s, sensor in enumerate(["sensor-a", "sensor-b", "sensor-c"]):
            rows.append({"sensor_id": sensor, "timestamp": T0 + k * 250, "temperature": 20 + k * 0.5 + s,
                         "humidity": 50.0 + k, "pressure": 1000 + k * 0.25, "battery_level": 80.0})
    frame = pd.DataFrame(rows)
    frame.loc[0, "temperature"] = -1.0                                   # sensor-a: below 0
    frame.loc[3 * 3 + 1, "temperature"] = 45.0                           # sensor-b, k=3
    frame.loc[3 * 9 + 2, ["humidity", "battery_level"]] = [97.0, 5.0]    # sensor-c, k=9: two rules
    return frame


def expected_alerts(frame):
    out = []
    for row in frame.itertuples(index=False):
        for rule, field, above, below in RULES:
            value = getattr(row, field)
            if (above is not None and value > above) or (below is not None and value < below):
                out.append((row.sensor_id, rule, value, row.timestamp))
    return sorted(out)


def expected_windows(frame):
    out = {}
    for (sensor, start), group in frame.groupby(["sensor_id", frame["timestamp"] // WINDOW_MS * WINDOW_MS]):
        fired = sorted({rule for _, r in group.iterrows() for rule, field, above, below in RULES
                        if (above is not None and r[field] > above) or (below is not None and r[field] < below)})
        w = {"sample_count": len(group), "anomalies": fired, "window_end": start + WINDOW_MS}
        for field in ("temperature", "humidity", "pressure"):
            values = group[field].to_numpy()
            w[f"{field}.min"], w[f"{field}.max"], w[f"{field}.avg"] = values.min(), values.max(), values.mean()
        t = group["temperature"].to_numpy()
        w["temperature.std"] = math.sqrt(((t - t.mean()) ** 2).sum() / (len(t) - 1)) if len(t) > 1 else 0.0
        out[(sensor, start)] = w
    return out


def run_pipeline(broker, new_topic, frame, guarantee=None):
    topics = {"input": new_topic(), "windows": new_topic(), "aggregates": new_topic(), "alerts": new_topic(),
              "dlq": new_topic()}
    with broker.producer(topic=topics["input"]) as producer:
        producer.send_frame(frame)
    config = {"input": {"topics": [topics["input"]], "group_id": f"results-{topics['input']}"},
              "outputs": {k: v for k, v in topics.items() if k != "input"},
              "stages": [{"plugin": "anomaly"}, {"plugin": "aggregate", "config": {"interval_ms": 100}},
                         {"plugin": "window", "config": {"size_s": WINDOW_MS // 1000, "grace_s": 1}}]}
    pipeline = broker.pipeline(config, guarantee=guarantee)
    stats = pipeline.run_bounded(timeout=60)
    return pipeline, stats, topics


@pytest.mark.parametrize("guarantee", ["at_least_once", "exactly_once"])  # exactly-once: read_committed reads
def test_results_are_exactly_the_models_windows_and_alerts(broker, new_topic, guarantee):
    frame = readings()
    pipeline, stats, _ = run_pipeline(broker, new_topic, frame, guarantee)
    with pipeline:
        results = pipeline.results()
        again = pipeline.results()  # a second read gives the same: nothing consumed, nothing committed
        windows_only, alerts_only = pipeline.windows(), pipeline.alerts()

    want_windows = expected_windows(frame)
    windows = results.windows
    assert len(windows) == len(want_windows) == stats["emitted"]["windows"] == 6
    assert {"sensor_id", "window_start", "window_end", "sample_count", "temperature.min", "temperature.max",
            "temperature.avg", "temperature.std", "humidity.min", "humidity.max", "humidity.avg", "pressure.min",
            "pressure.max", "pressure.avg", "anomalies", "timestamp", "message_id"} == set(windows.columns)
    assert str(windows["window_start"].dtype) == "datetime64[ns, UTC]" and windows["sample_count"].dtype == np.int64
    for row in windows.to_dict("records"):
        start_ms = row["window_start"].value // 1_000_000
        want = want_windows[(row["sensor_id"], start_ms)]
        assert row["window_end"].value // 1_000_000 == want["window_end"]
        assert row["sample_count"] == want["sample_count"]
        assert row["anomalies"] == want["anomalies"]
        for key in ("temperature.min", "temperature.max", "temperature.avg", "temperature.std", "humidity.min",
                    "humidity.max", "humidity.avg", "pressure.min", "pressure.max", "pressure.avg"):
            assert row[key] == pytest.approx(want[key], rel=1e-12, abs=1e-12), (row["sensor_id"], start_ms, key)
    assert sorted(zip(windows["sensor_id"], windows["window_start"])) == sorted(
        (s, pd.Timestamp(t, unit="ms", tz="UTC")) for s, t in want_windows)

    alerts = results.alerts
    assert set(alerts.columns) == {"sensor_id", "rule", "value", "event_time", "event_time_ms", "detected_at_ms",
                                   "plugin"}
    got = sorted(zip(alerts["sensor_id"], alerts["rule"], alerts["value"], alerts["event_time_ms"]))
    assert got == expected_alerts(frame) and len(got) == stats["alerts"] == 4
    assert (alerts["event_time"] == pd.to_datetime(alerts["event_time_ms"], unit="ms", utc=True)).all()
    assert str(alerts["detected_at_ms"].dtype) == "datetime64[ns, UTC]"

    aggregates = results.aggregates
    assert set(aggregates["sensor_id"]) == set(frame["sensor_id"])
    assert aggregates.groupby("sensor_id")["sample_count"].sum().sum() == len(frame)

    key = ["sensor_id", "window_start"]
    pd.testing.assert_frame_equal(windows.sort_values(key, ignore_index=True),
                                  again.windows.sort_values(key, ignore_index=True))
    pd.testing.assert_frame_equal(windows.sort_values(key, ignore_index=True),
                                  windows_only.sort_values(key, ignore_index=True))
    pd.testing.assert_frame_equal(alerts.sort_values(["sensor_id", "rule"], ignore_index=True),
                                  alerts_only.sort_values(["sensor_id", "rule"], ignore_index=True))


def python_decoded(broker, topic, **typing):
    """The output topic as the per-record Python path made it: json.loads per value."""
    with broker.consumer(topic) as consumer:
        return rows_to_frame([envelope_row(r.value.decode("utf-8", "replace")) for r in consumer.read(timeout=30)],
                             **typing)


def test_results_match_the_per_record_python_decoding(broker, new_topic):
    pipeline, _, topics = run_pipeline(broker, new_topic, readings())
    with pipeline:
        results = pipeline.results()
    windows = python_decoded(broker, topics["windows"], epoch_s_columns=("window_start", "window_end"))
    alerts = python_decoded(broker, topics["alerts"], time_columns=("event_time",), epoch_ms_columns=("detected_at_ms",))
    aggregates = python_decoded(broker, topics["aggregates"],
                                time_columns=("timestamp", "latest_timestamp", "processed_at"))
    for got, want in ((results.windows, windows), (results.alerts, alerts), (results.aggregates, aggregates)):
        by = sorted(c for c in want.columns if c in ("message_id", "sensor_id", "rule", "event_time_ms"))
        pd.testing.assert_frame_equal(got.sort_values(by, ignore_index=True), want.sort_values(by, ignore_index=True))


ODD_VALUES = [
    '{"plain": {"x": 1, "y": [1, "a", null, {"k": true}]}, "flag": false, "none": null, "n": 3}',
    "not json",
    "[1, 2]",
    '{"n": 2.5, "s": "h\\u00e9 \\"q\\"", "empty": {}, "flag": true}',
    '{"sensor_id": {"id": 7}, "data": {"n": 1, "nested": {"deep": {"er": "x"}}}}',
    '"just a string"',
    '{"n": 4, "plain": {"x": 2.5}, "flag": null}',
    '{"dup": 1, "dup": 2}',
    "",
]


def test_read_frame_decodes_as_the_python_path(broker, new_topic):
    topic = new_topic(1)  # one partition: both reads see the records in the same order
    with broker.producer(topic=topic) as producer:
        producer.send("s1", {"temperature": 5.0, "count": 3, "ok": True, "loc": {"lat": 1.5}}, timestamp=T0)
        for value in ODD_VALUES:
            producer.send_raw(value)
        producer.send("s2", {"temperature": 6, "loc": {"lat": 2.5, "lon": -1.0}}, timestamp=T0 + 1)
    with broker.consumer(topic) as consumer:
        got = consumer.read_frame(timeout=30)
    want = python_decoded(broker, topic)
    assert len(got) == len(ODD_VALUES) + 2
    pd.testing.assert_frame_equal(got, want)
    assert got["n"].dtype == np.float64 and got["value"].tolist()[2:4] == ["not json", "[1, 2]"]
    with broker.consumer(topic) as consumer:
        batches = list(consumer.batches(timeout=30))
    assert sum(len(b) for b in batches) == len(got)
    for batch in batches:
        pd.testing.assert_frame_equal(batch.to_frame(), rows_to_frame(envelope_row(v) for v in batch._native.values()))


def test_reading_a_topic_that_does_not_exist_is_empty(broker):
    with broker.pipeline({"outputs": {"windows": "no-such-topic-for-results"}}) as pipeline:
        assert pipeline.windows(timeout=10).empty
