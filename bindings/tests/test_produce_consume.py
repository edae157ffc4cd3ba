"""Producing single readings, lists of dicts and DataFrames; consuming lists and DataFrames."""
import datetime as dt
import json
import math

import numpy as np
import pandas as pd
import pytest

import iotstream

T0 = 1_700_000_000_000  # 2023-11-14T22:13:20Z


def read_all(broker, topic, expected):
    with broker.consumer(topic) as consumer:
        records = consumer.read(timeout=30)
    assert len(records) == expected
    return records


def by_sensor(records):
    return {r.key.decode(): r.json() for r in records}


def test_single_reading_has_the_seed_envelope_and_key(broker, new_topic):
    topic = new_topic()
    with broker.producer(topic=topic) as producer:
        producer.send("sensor-1", {"temperature": 21.5, "location": {"lat": 1.25}},
                      timestamp=dt.datetime(2024, 1, 2, 3, 4, 5, 678000))
        producer.send("sensor-2", '{"temperature": 1}', timestamp="2024-01-02T03:04:05Z")
        producer.send("sensor-3", {"temperature": 2.0}, timestamp=T0)
        producer.send("sensor-4", {"temperature": 3.0}, timestamp=-1)
        producer.flush()
        assert producer.stats().delivered == 4
    envelopes = by_sensor(read_all(broker, topic, 4))
    one = envelopes["sensor-1"]
    assert set(one) == {"sensor_id", "timestamp", "data", "message_id"}
    assert one["sensor_id"] == "sensor-1"
    assert one["timestamp"] == "2024-01-02T03:04:05.678000Z"
    assert one["data"] == {"temperature": 21.5, "location": {"lat": 1.25}}
    assert len(one["message_id"]) == 36 and one["message_id"][14] == "4"
    assert envelopes["sensor-2"]["timestamp"] == "2024-01-02T03:04:05.000000Z"
    assert envelopes["sensor-3"]["timestamp"] == "2023-11-14T22:13:20.000000Z"
    assert envelopes["sensor-4"]["timestamp"] == "1969-12-31T23:59:59.999000Z"


def test_reading_without_timestamp_is_stamped_now(broker, new_topic):
    topic = new_topic(1)
    before = dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=1)
    with broker.producer(topic=topic) as producer:
        producer.send("s", {"temperature": 1.0})
    (record,) = read_all(broker, topic, 1)
    stamped = dt.datetime.fromisoformat(record.json()["timestamp"].replace("Z", "+00:00"))
    assert before <= stamped <= dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=1)


def test_lists_of_dicts_in_both_shapes(broker, new_topic):
    seed_topic, flat_topic = new_topic(), new_topic()
    with broker.producer() as producer:
        seed_shape = [{"sensor_id": f"s{i}", "data": {"temperature": float(i)}, "timestamp": T0 + i} for i in range(5)]
        assert producer.send_batch(seed_shape, topic=seed_topic) == 5
        flat = [{"sensor_id": f"f{i}", "temperature": float(i), "timestamp": T0} for i in range(4)]
        assert producer.produce(flat, topic=flat_topic) == 4
        with pytest.raises(iotstream.InvalidArgumentError, match="every reading"):
            producer.send_batch([{"sensor_id": "a", "data": {}, "timestamp": T0}, {"sensor_id": "b", "data": {}}])
        with pytest.raises(iotstream.InvalidArgumentError, match="reading 1"):
            producer.send_batch([{"sensor_id": "a", "data": {}}, {"sensor_id": "b", "data": {"x": float("nan")}}])
    with broker.consumer([seed_topic, flat_topic]) as consumer:
        records = consumer.read(timeout=30)
    seed = {r.key.decode(): r.json() for r in records if r.topic == seed_topic}
    flat = {r.key.decode(): r.json() for r in records if r.topic == flat_topic}
    assert seed["s3"]["data"] == {"temperature": 3.0} and seed["s3"]["timestamp"] == "2023-11-14T22:13:20.003000Z"
    assert flat["f2"]["data"] == {"temperature": 2.0}


def test_frame_columns_become_typed_nested_data(broker, new_topic):
    topic = new_topic()
    frame = pd.DataFrame({
        "sensor_id": ["a", "b", "c"],
        "timestamp": pd.to_datetime([T0, T0 + 1000, T0 + 2000], unit="ms", utc=True).tz_convert("Europe/Paris"),
        "temperature": [20.5, np.nan, -3.25],       # NaN: the field is left out of that reading
        "count": np.array([1, 2, 3], dtype=np.int32),
        "ok": [True, False, True],
        "status": ["fine", None, 'say "hi"\n'],
        "lat": [1.0, 2.0, np.nan],
        "lon": [np.nan, np.nan, np.nan],            # all absent: the nested object is dropped
    })
    with broker.producer(topic=topic) as producer:
        sent = producer.send_frame(frame, columns={"temperature": "temperature", "count": "count", "ok": "ok",
                                                   "status": "status", "lat": "location.lat", "lon": "location.lon"})
        assert sent == 3
    data = {k: v["data"] for k, v in by_sensor(read_all(broker, topic, 3)).items()}
    assert data["a"] == {"temperature": 20.5, "count": 1, "ok": True, "status": "fine", "location": {"lat": 1.0}}
    assert data["b"] == {"count": 2, "ok": False, "location": {"lat": 2.0}}
    assert data["c"] == {"temperature": -3.25, "count": 3, "ok": True, "status": 'say "hi"\n'}


def test_frame_strings_are_escaped_as_json_dumps_writes_them(broker, new_topic):
    # Byte for byte: the bindings' column strings (nlohmann's serializer) and the core's envelope
    # (its one escaper) both spell a string as json.dumps(ensure_ascii=False) does.
    topic = new_topic()
    text = "".join(chr(c) for c in range(0x20)) + 'say "hi" \\ \x7f caf\u00e9 \u20ac'
    frame = pd.DataFrame({"sensor_id": ["id\n\"\\\x01\u00e9", "plain"], "status": [text, "fine"]})
    with broker.producer(topic=topic) as producer:
        assert producer.send_frame(frame, timestamp_column=None, columns={"status": 'st"at\tus'}) == 2
    values = {r.key.decode(): r.value for r in read_all(broker, topic, 2)}
    escaped = values["id\n\"\\\x01\u00e9"]
    assert ('"data":{' + json.dumps('st"at\tus') + ":" + json.dumps(text, ensure_ascii=False) + "}").encode() in escaped
    assert ('{"sensor_id":' + json.dumps("id\n\"\\\x01\u00e9", ensure_ascii=False) + ",").encode() in escaped
    assert b'"data":{"st\\"at\\tus":"fine"}' in values["plain"]


def test_frame_timestamps_in_every_accepted_form(broker, new_topic):
    topic = new_topic()
    expected = "2023-11-14T22:13:20.500000Z"
    frames = [
        pd.DataFrame({"sensor_id": ["ms"], "timestamp": [T0 + 500], "v": [1.0]}),
        pd.DataFrame({"sensor_id": ["naive"], "timestamp": pd.to_datetime([T0 + 500], unit="ms"), "v": [1.0]}),
        pd.DataFrame({"sensor_id": ["text"], "timestamp": ["2023-11-14T23:13:20.5+01:00"], "v": [1.0]}),
    ]
    with broker.producer(topic=topic) as producer:
        for frame in frames:
            producer.send_frame(frame)
    stamps = {k: v["timestamp"] for k, v in by_sensor(read_all(broker, topic, 3)).items()}
    assert stamps == {"ms": expected, "naive": expected, "text": expected}


def test_bad_frames_are_refused_before_anything_is_sent(broker, new_topic):
    topic = new_topic(1)
    good = pd.DataFrame({"sensor_id": ["a", "b"], "temperature": [1.0, 2.0]})
    with broker.producer(topic=topic) as producer:
        with pytest.raises(ValueError, match="'temperature' is infinite in row 1"):
            producer.send_frame(good.assign(temperature=[1.0, math.inf]))
        with pytest.raises(ValueError, match="sensor_id is empty in row 1"):
            producer.send_frame(good.assign(sensor_id=["a", ""]))
        with pytest.raises(iotstream.InvalidArgumentError, match="no sensor column 'sensor'"):
            producer.send_frame(good, sensor_column="sensor")
        with pytest.raises(iotstream.InvalidArgumentError, match=r"NaT\) in row 0"):
            producer.send_frame(good.assign(timestamp=[pd.NaT, pd.Timestamp(T0, unit="ms")]))
        with pytest.raises(ValueError, match="collides"):
            producer.send_frame(good.assign(location=1.0, lat=2.0), columns={"location": "location", "lat": "location.lat"})
        with pytest.raises(iotstream.InvalidArgumentError, match="'bad' row 0"):
            producer.send_frame(good.assign(bad=[object(), object()]))
        with pytest.raises(ValueError, match="not a JSON object"):
            producer.send("a", "[1, 2]")
        assert producer.stats().sent == 0


def test_large_frame_is_delivered_completely(broker, new_topic):
    topic = new_topic()
    n = 50_000
    frame = pd.DataFrame({"sensor_id": [f"sensor_{i % 1000}" for i in range(n)],
                          "timestamp": T0 + np.arange(n, dtype=np.int64),
                          "temperature": np.linspace(0, 40, n), "humidity": 50.0, "pressure": 1000.0})
    with broker.producer(topic=topic, kafka={"compression.type": "lz4"}) as producer:
        assert producer.send_frame(frame) == n
        producer.flush()
        stats = producer.stats()
    assert (stats.sent, stats.delivered, stats.failed) == (n, n, 0)
    with broker.consumer(topic) as consumer:
        got = consumer.read_frame(timeout=60)
    assert len(got) == n
    got = got.sort_values("timestamp").reset_index(drop=True)
    np.testing.assert_allclose(got["temperature"].to_numpy(), frame["temperature"].to_numpy())
    assert got["timestamp"].iloc[-1] == pd.Timestamp(T0 + n - 1, unit="ms", tz="UTC")


def test_consume_batches_commit_and_counters(broker, new_topic):
    topic = new_topic(2)
    with broker.producer(topic=topic) as producer:
        producer.send_raw(b"not json", key="k")
        producer.send_raw('{"plain": {"x": 1}}')
        producer.send("s1", {"temperature": 5.0}, timestamp=T0)
    with broker.consumer(topic, group_id=f"g-{topic}") as consumer:
        seen = []
        for batch in consumer.batches(timeout=30):
            assert isinstance(batch, iotstream.Batch) and len(batch) == len(batch.records)
            seen.extend(batch)
            consumer.commit(batch)
        stats = consumer.stats()
        lag = consumer.lag(timeout=10)
    assert len(seen) == 3 and all(isinstance(r, iotstream.Record) for r in seen)
    assert {r.value for r in seen} >= {b"not json", b'{"plain": {"x": 1}}'}
    assert stats["consumed"] == 3 and stats["committed"] == 3 and stats["commits"] >= 1
    assert sorted(p["partition"] for p in lag) == [0, 1]
    assert all(p["lag"] == 0 and p["committed"] == p["high_watermark"] for p in lag)
    # As a frame: envelope, plain object and raw text side by side.
    with broker.consumer(topic) as consumer:
        frame = consumer.read_frame(timeout=30).set_index("value", drop=False)
    assert set(frame.columns) >= {"value", "plain.x", "sensor_id", "temperature", "timestamp"}
    assert frame.loc["not json", "value"] == "not json"
    assert frame["plain.x"].dropna().tolist() == [1]
    assert frame["timestamp"].dropna().tolist() == [pd.Timestamp(T0, unit="ms", tz="UTC")]


def test_consumer_iterates_until_closed(broker, new_topic):
    topic = new_topic(1)
    with broker.producer(topic=topic) as producer:
        producer.send_batch([{"sensor_id": "s", "data": {"i": i}} for i in range(3)])
    consumer = broker.consumer(topic)
    got = []
    for batch in consumer:
        got.extend(r.json()["data"]["i"] for r in batch)
        if len(got) == 3:
            consumer.close()
    assert got == [0, 1, 2]


def test_closing_a_member_before_its_first_assignment_does_not_abort_the_process():
    """librdkafka < 2.3 aborts the process when a cooperative-sticky member that has joined the
    group is destroyed before its first assignment (librdkafka #4312): every SyncGroup fails here,
    so the member joins and never gets one; closing it must end the program normally."""
    import subprocess
    import sys
    import textwrap
    program = textwrap.dedent("""
        import time, iotstream
        broker = iotstream.Broker(partitions=2)
        broker.push_request_errors(14, 100000, 27)  # every SyncGroup: REBALANCE_IN_PROGRESS
        consumer = iotstream.Consumer(broker, "iot-readings",
                                      kafka={"session.timeout.ms": 6000, "heartbeat.interval.ms": 500})
        start = time.time()
        while time.time() - start < 5:  # the mock answers the first JoinGroup after 3 s
            assert not consumer.poll(timeout=0.2)
        consumer.close()
        broker.close()
        print("closed")
    """)
    done = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == "closed", done.stderr[-3000:]
    assert "librdkafka #4312" in done.stderr, done.stderr[-3000:]  # the workaround, not luck
