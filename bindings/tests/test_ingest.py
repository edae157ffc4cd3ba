"""iotstream.Ingest: the core's ingestion service from Python (issue 14), checked against what
reaches Kafka, not against the service's own counters alone."""
import json

import pytest

import iotstream

READING = {"data": {"temperature": 21.5, "humidity": 40.0, "pressure": 1013.0}}


def read_all(broker, topic, expected):
    with broker.consumer(topic) as consumer:
        records = consumer.read(timeout=30)
    assert len(records) == expected
    return records


def test_accepted_readings_reach_the_topic_in_the_seed_envelope_keyed_by_sensor(broker, new_topic):
    topic = new_topic()
    with broker.ingest(topic=topic, rate=1000, burst=1000) as ingest:
        one = ingest.submit("sensor-1", {**READING, "timestamp": "2026-11-26T23:34:43.123Z"})
        many = ingest.submit("sensor-2", [READING, READING, READING])
        ndjson = ingest.submit("sensor-3", "\n".join(json.dumps(READING) for _ in range(2)) + "\n")
        assert [r.status for r in one + many + ndjson] == ["accepted"] * 6
        assert all(r.accepted and r.reason == "" and r.detail == "" for r in one + many + ndjson)
        assert ingest.close(timeout=30)
    records = read_all(broker, topic, 6)
    keys = sorted(r.key.decode() for r in records)
    assert keys == ["sensor-1"] + ["sensor-2"] * 3 + ["sensor-3"] * 2
    envelope = next(r.json() for r in records if r.key == b"sensor-1")
    assert set(envelope) == {"sensor_id", "timestamp", "data", "message_id"}
    assert envelope["sensor_id"] == "sensor-1"
    assert envelope["timestamp"] == "2026-11-26T23:34:43.123Z"
    assert envelope["data"] == READING["data"]
    assert len({r.json()["message_id"] for r in records}) == 6


def test_each_reading_gets_its_own_result_and_invalid_ones_go_to_the_dead_letter_topic(broker, new_topic):
    topic, dlq = new_topic(), new_topic()
    bad_type = {"data": {"temperature": "warm", "humidity": 40.0, "pressure": 1013.0}}
    missing = {"data": {"humidity": 40.0}}
    with broker.ingest(topic=topic, dead_letter_topic=dlq, rate=1000, burst=1000) as ingest:
        results = ingest.submit("dev-1", [READING, bad_type, READING, missing])
        assert [r.status for r in results] == ["accepted", "invalid", "accepted", "invalid"]
        assert results[1].reason == "wrong_type" and "temperature" in results[1].detail
        assert results[3].reason == "missing_field" and results[3].detail
        garbage = ingest.submit("dev-1", b"\xff\xfe not json")
        assert len(garbage) == 1 and garbage[0].status == "invalid" and garbage[0].reason
        stats = ingest.stats()
        assert (stats["payloads"], stats["accepted"], stats["invalid"]) == (2, 2, 3)
        assert ingest.close(timeout=30)
    assert len(read_all(broker, topic, 2)) == 2
    dead = read_all(broker, dlq, 3)
    assert b"\xff\xfe not json" in [r.value for r in dead]


def test_the_token_bucket_grants_the_burst_then_asks_to_retry(broker, new_topic):
    topic = new_topic()
    with broker.ingest(topic=topic, rate=1, burst=5, devices={"vip": {"rate": 1000, "burst": 100}}) as ingest:
        results = ingest.submit("dev-2", [READING] * 8)
        assert [r.status for r in results] == ["accepted"] * 5 + ["rate_limited"] * 3
        assert all(0 < r.retry_after_ms <= 1000 for r in results[5:])
        assert all(r.status == "accepted" for r in ingest.submit("vip", [READING] * 50))
        assert ingest.stats()["rate_limited"] == 3
        assert ingest.close(timeout=30)
    assert len(read_all(broker, topic, 55)) == 55


def test_a_device_may_send_only_its_own_readings_unless_any_is_configured(broker, new_topic):
    topic = new_topic()
    foreign = [READING, {**READING, "sensor_id": "someone-else"}]
    with broker.ingest(topic=topic) as own, broker.ingest(topic=topic, sensor_ids="any") as any_ids:
        assert [r.status for r in own.submit("dev-3", foreign)] == ["forbidden", "forbidden"]
        assert [r.status for r in any_ids.submit("dev-3", foreign)] == ["accepted", "accepted"]
        assert own.close(timeout=30) and any_ids.close(timeout=30)
    assert sorted(r.key.decode() for r in read_all(broker, topic, 2)) == ["dev-3", "someone-else"]


def test_limits_and_bad_config_are_named(broker, new_topic):
    with broker.ingest(topic=new_topic(), max_readings=3, max_payload_bytes=1024) as ingest:
        too_many = ingest.submit("dev-4", [READING] * 4)
        assert [r.status for r in too_many] == ["too_large"] and "max_readings" in too_many[0].detail
        too_big = ingest.submit("dev-4", b" " * 2000)
        assert too_big[0].status == "too_large" and "max_payload_bytes" in too_big[0].detail
    with pytest.raises(iotstream.ConfigError, match="rate"):
        broker.ingest(rate=-1)
    with pytest.raises(iotstream.ConfigError, match="sensor_ids"):
        broker.ingest(sensor_ids="some")
    closed = broker.ingest()
    closed.close()
    with pytest.raises(iotstream.StateError):
        closed.submit("dev-5", READING)
