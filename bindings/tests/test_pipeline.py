"""Pipelines built from dicts, run bounded or for a while; results as DataFrames."""
import time

import numpy as np
import pandas as pd
import pytest

import iotstream

T0 = 1_700_000_000_000  # a multiple of the 2 s window size
WINDOW = {"size_s": 2, "grace_s": 1}


def readings(sensors=4, seconds=6, per_second=4):
    n = sensors * seconds * per_second
    frame = pd.DataFrame({
        "sensor_id": [f"sensor-{i % sensors}" for i in range(n)],
        "timestamp": T0 + (np.arange(n) // sensors) * (1000 // per_second),
        "temperature": 20 + np.arange(n) * 0.05,
        "humidity": 40 + np.arange(n) % 7,
        "pressure": 1000.0,
        "battery_level": 80.0,
    })
    frame.loc[5, "temperature"] = 55.0        # temperature_out_of_range
    frame.loc[17, "battery_level"] = 3.0      # low_battery
    return frame


def pipeline_topics(new_topic):
    return {"input": new_topic(), "windows": new_topic(), "aggregates": new_topic(), "alerts": new_topic(),
            "dlq": new_topic()}


def pipeline_config(topics, group):
    return {"input": {"topics": [topics["input"]], "group_id": group},
            "outputs": {k: v for k, v in topics.items() if k != "input"},
            "stages": [{"plugin": "anomaly"}, {"plugin": "aggregate", "config": {"interval_ms": 100}},
                       {"plugin": "window", "config": WINDOW}]}


def expected_windows(frame):
    f = frame.assign(window_start=pd.to_datetime(frame["timestamp"] // 2000 * 2, unit="s", utc=True))
    return f.groupby(["sensor_id", "window_start"])["temperature"].agg(["count", "min", "max", "mean", "std"])


def test_bounded_run_windows_alerts_aggregates(broker, new_topic):
    topics = pipeline_topics(new_topic)
    frame = readings()
    with broker.producer(topic=topics["input"]) as producer:
        producer.send_frame(frame)
        producer.send_raw(b"{not json", key=b"junk")
    with broker.pipeline(pipeline_config(topics, "bounded")) as pipeline:
        stats = pipeline.run_bounded(timeout=60)
        assert stats["consumed"] == len(frame) + 1 and stats["decoded"] == len(frame)
        assert stats["dead_lettered"]["decoder"] == 1 and stats["dead_lettered"]["by_reason"]["not_json"] == 1
        assert stats["alerts"] == 2 and stats["failed"] is False
        counters = pipeline.counters()
        assert counters["emitted.windows"] == stats["emitted"]["windows"] and "dead_lettered.total" in counters
        results = pipeline.results()

    expected = expected_windows(frame)
    windows = results.windows.set_index(["sensor_id", "window_start"]).sort_index()
    assert len(windows) == len(expected) == stats["emitted"]["windows"]
    assert (windows["window_end"] - windows.index.get_level_values("window_start") == pd.Timedelta(seconds=2)).all()
    np.testing.assert_array_equal(windows["sample_count"], expected["count"])
    np.testing.assert_allclose(windows["temperature.min"], expected["min"])
    np.testing.assert_allclose(windows["temperature.max"], expected["max"])
    np.testing.assert_allclose(windows["temperature.avg"], expected["mean"])
    np.testing.assert_allclose(windows["temperature.std"], expected["std"])
    hot = windows.loc[("sensor-1", pd.Timestamp(T0, unit="ms", tz="UTC"))]
    assert hot["anomalies"] == ["low_battery", "temperature_out_of_range"]  # rows 5 and 17: one window
    assert sum(len(a) for a in windows["anomalies"]) == 2  # and no other window is marked

    alerts = results.alerts.sort_values("rule").reset_index(drop=True)
    assert alerts["rule"].tolist() == ["low_battery", "temperature_out_of_range"]
    assert alerts["sensor_id"].tolist() == ["sensor-1", "sensor-1"]
    assert alerts["value"].tolist() == [3.0, 55.0]
    assert alerts["event_time"].iloc[1] == pd.Timestamp(int(frame.loc[5, "timestamp"]), unit="ms", tz="UTC")

    aggregates = results.aggregates
    assert set(aggregates["sensor_id"]) == set(frame["sensor_id"])
    assert aggregates.groupby("sensor_id")["sample_count"].sum().sum() == len(frame)


def test_started_pipeline_consumes_until_stopped(broker, new_topic):
    topics = pipeline_topics(new_topic)
    frame = readings(sensors=2, seconds=4)
    with broker.pipeline(pipeline_config(topics, "continuous")) as pipeline:
        pipeline.start()
        assert pipeline.running
        with broker.producer(topic=topics["input"]) as producer:
            producer.send_frame(frame)
        deadline = time.monotonic() + 45
        while pipeline.stats()["consumed"] < len(frame) and time.monotonic() < deadline:
            time.sleep(0.1)
        pipeline.stop(close_windows=True)
        assert not pipeline.running
        stats = pipeline.stats()
    assert stats["consumed"] == len(frame)
    assert stats["emitted"]["windows"] == len(expected_windows(frame))


def test_run_for_a_duration_returns_stopped(broker, new_topic):
    topics = pipeline_topics(new_topic)
    with broker.pipeline(pipeline_config(topics, "timed")) as pipeline:
        started = time.monotonic()
        stats = pipeline.run(duration=0.5)
        assert time.monotonic() - started >= 0.5
        assert stats["running"] is False and not pipeline.running


def test_context_manager_frees_and_later_use_fails(broker):
    with broker.pipeline(window=WINDOW) as pipeline:
        assert [s["plugin"] for s in pipeline.config["stages"]] == ["anomaly", "aggregate", "window"]
        assert pipeline.config["stages"][2]["config"] == WINDOW
        assert "idle" in repr(pipeline)
    assert pipeline.closed
    with pytest.raises(iotstream.StateError):
        pipeline.start()


def test_window_shorthand_needs_a_window_stage(broker):
    with pytest.raises(iotstream.InvalidArgumentError, match="window"):
        broker.pipeline({"stages": [{"plugin": "anomaly"}]}, window=WINDOW)
