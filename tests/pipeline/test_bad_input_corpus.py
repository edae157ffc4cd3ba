"""The hostile-input corpus (issue 13): over forty kinds of bad record, each produced with a
client we did not write, between good readings. Every bad record must end in iot-dlq with its
original bytes and the expected reason, the good readings around them must still be windowed,
and the host's counters must reconcile (nothing crashes, nothing vanishes)."""
import json
import random
from collections import Counter

from confluent_kafka import Producer

from conftest import Broker, consume_all, envelope, produce, run_host

T = "2026-01-01T00:10:00Z"
GOOD = {"temperature": 21.5, "humidity": 40.0, "pressure": 1010.0, "battery_level": 80.0,
        "location": {"lat": 37.5, "lon": -121.5}}
VALID = envelope("s1", T, GOOD)


def with_data(**changes):
    return envelope("s1", T, dict(GOOD, **changes))


def raw(text):
    return text.encode() if isinstance(text, str) else text


def data_text(fields):
    """An envelope whose "data" object is given as raw JSON text (for literals Python's json
    cannot write, such as duplicate keys or -Infinity)."""
    return f'{{"sensor_id": "s1", "timestamp": "{T}", "data": {fields}, "message_id": "m"}}'


GOOD_FIELDS = ('"humidity": 40.0, "pressure": 1010.0, "battery_level": 80.0, '
               '"location": {"lat": 37.5, "lon": -121.5}')

# kind -> (record bytes, expected DLQ reason). Kinds are distinct ways input goes wrong; several
# share a reason because the reason names the rule broken, the kind names how.
CORPUS = {
    # not JSON at all
    "garbage_text": (raw("this is not json {"), "not_json"),
    "empty_record": (b"", "not_json"),
    "whitespace_only": (b"   \n\t ", "not_json"),
    "binary_garbage": (bytes(random.Random(7).randrange(256) for _ in range(512)), "not_json"),
    "nul_bytes": (b'{"sensor_id": "s1\x00", "timestamp": "' + T.encode() + b'"}\x00\x00', "not_json"),
    "truncated_json": (raw(VALID[: len(VALID) // 2]), "not_json"),
    "truncated_in_string": (raw(VALID[: VALID.index('"s1"') + 2]), "not_json"),
    "trailing_garbage": (raw(VALID + " trailing"), "not_json"),
    "two_documents": (raw(VALID + VALID), "not_json"),
    "single_quotes": (raw(VALID.replace('"', "'")), "not_json"),
    "trailing_comma": (raw(VALID[:-1] + ",}"), "not_json"),
    "utf8_bom": (b"\xef\xbb\xbf" + raw(VALID), "not_json"),
    "invalid_utf8_in_sensor_id": (raw(VALID).replace(b'"s1"', b'"s\xff\xfe1"'), "not_json"),
    "invalid_utf8_elsewhere": (raw(VALID).replace(b'"message_id": "', b'"message_id": "\xc3\x28'), "not_json"),
    "control_char_in_string": (raw(VALID).replace(b'"s1"', b'"s\x011"'), "not_json"),
    "bad_escape": (raw(VALID).replace(b'"s1"', b'"s\\q1"'), "not_json"),
    "leading_zero_number": (raw(data_text('{"temperature": 021.5, ' + GOOD_FIELDS + "}")), "not_json"),
    "deep_nesting": (raw(data_text('{"temperature": 21.5, ' + GOOD_FIELDS + ', "x": '
                                   + "[" * 5000 + "]" * 5000 + "}")), "not_json"),
    # valid JSON, wrong shape
    "top_level_array": (raw(json.dumps([json.loads(VALID)])), "wrong_type"),
    "top_level_string": (raw('"just a string"'), "wrong_type"),
    "top_level_null": (raw("null"), "wrong_type"),
    "top_level_number": (raw("42"), "wrong_type"),
    "empty_object": (raw("{}"), "missing_sensor_id"),
    "missing_sensor_id": (raw(json.dumps({"timestamp": T, "data": GOOD})), "missing_sensor_id"),
    "null_sensor_id": (raw(json.dumps({"sensor_id": None, "timestamp": T, "data": GOOD})), "missing_sensor_id"),
    "empty_sensor_id": (raw(envelope("", T, GOOD)), "missing_sensor_id"),
    "huge_sensor_id": (raw(envelope("s" * 10_000, T, GOOD)), "sensor_id_too_long"),
    "numeric_sensor_id": (raw(json.dumps({"sensor_id": 17, "timestamp": T, "data": GOOD})), "wrong_type"),
    "object_sensor_id": (raw(json.dumps({"sensor_id": {"id": 1}, "timestamp": T, "data": GOOD})), "wrong_type"),
    "duplicate_sensor_id": (raw(f'{{"sensor_id": "s1", "sensor_id": "s2", "timestamp": "{T}", '
                                f'"data": {json.dumps(GOOD)}}}'), "duplicate_key"),
    "duplicate_field": (raw(data_text('{"temperature": 21.5, "temperature": 99.0, ' + GOOD_FIELDS + "}")),
                        "duplicate_key"),
    # timestamps
    "missing_timestamp": (raw(json.dumps({"sensor_id": "s1", "data": GOOD})), "missing_timestamp"),
    "timestamp_garbage": (raw(envelope("s1", "yesterday at noon", GOOD)), "bad_timestamp"),
    "timestamp_month_13": (raw(envelope("s1", "2026-13-45T99:00:00", GOOD)), "bad_timestamp"),
    "timestamp_feb_30": (raw(envelope("s1", "2026-02-30T00:00:00", GOOD)), "bad_timestamp"),
    "timestamp_bad_offset": (raw(envelope("s1", "2026-01-01T00:00:00+25:00", GOOD)), "bad_timestamp"),
    "timestamp_far_future": (raw(envelope("s1", "10000-01-01T00:00:00", GOOD)), "bad_timestamp"),
    "timestamp_far_past": (raw(envelope("s1", "-0001-01-01T00:00:00", GOOD)), "bad_timestamp"),
    "timestamp_epoch_out_of_range": (raw(envelope("s1", 10**17, GOOD)), "bad_timestamp"),
    "timestamp_fractional_epoch": (raw(envelope("s1", 1.5e12, GOOD)), "bad_timestamp"),
    "timestamp_boolean": (raw(envelope("s1", True, GOOD)), "wrong_type"),
    # fields under "data"
    "missing_data": (raw(json.dumps({"sensor_id": "s1", "timestamp": T})), "missing_field"),
    "data_is_array": (raw(envelope("s1", T, [1, 2, 3])), "wrong_type"),
    "missing_field": (raw(envelope("s1", T, {k: v for k, v in GOOD.items() if k != "temperature"})),
                      "missing_field"),
    "field_is_string": (raw(with_data(temperature="hot")), "wrong_type"),
    "field_is_boolean": (raw(with_data(temperature=True)), "wrong_type"),
    "field_is_null": (raw(with_data(temperature=None)), "missing_field"),
    "location_not_object": (raw(with_data(location="here")), "wrong_type"),
    "nan_literal": (raw(with_data(temperature=float("nan"))), "non_finite"),
    "infinity_literal": (raw(with_data(temperature=float("inf"))), "non_finite"),
    "minus_infinity_literal": (raw(data_text('{"temperature": -Infinity, ' + GOOD_FIELDS + "}")), "non_finite"),
    "number_overflows_double": (raw(data_text('{"temperature": 1e999, ' + GOOD_FIELDS + "}")), "non_finite"),
    # size
    "too_large": (raw(with_data(note="x" * 70000)), "too_large"),
}


def test_the_corpus_has_at_least_forty_kinds():
    assert len(CORPUS) >= 40, len(CORPUS)


def test_every_kind_of_bad_record_is_dead_lettered_and_the_pipeline_goes_on(tmp_path):
    broker = Broker(tmp_path, partitions=2)
    try:
        # Good readings for three sensors around the bad ones: their windows prove the
        # pipeline kept running after every bad record.
        good = [(f"g{i % 3}", envelope(f"g{i % 3}", f"2026-01-01T00:10:{i:02d}Z", GOOD))
                for i in range(len(CORPUS))]
        records = []
        for (kind, (value, _reason)), reading in zip(CORPUS.items(), good):
            records.append(reading)
            records.append((f"bad-{kind}", value))
        produce(broker.bootstrap, records)
        # A value over the broker's default record size (the decoder's limit is far lower); the
        # broker accepts it from a producer allowed to send it, and its dead letter must fit.
        huge = raw(with_data(note="y" * 1_100_000))
        p = Producer({"bootstrap.servers": broker.bootstrap, "message.max.bytes": 4_000_000})
        p.produce("iot-readings", key="bad-over_broker_limit", value=huge)
        assert p.flush(30) == 0

        summary_file = tmp_path / "summary.json"
        run_host("--bootstrap", broker.bootstrap, "--bounded", "--group", "corpus", "--window-size", "60",
                 "--grace", "5", "--show-windows", "0", "--summary-json", str(summary_file))
        summary = json.loads(summary_file.read_text())["pipeline"]

        expected = {kind: reason for kind, (_v, reason) in CORPUS.items()}
        expected["over_broker_limit"] = "too_large"
        dlq = consume_all(broker.bootstrap, "iot-dlq", expect=len(expected))
        got = {}
        for key, value, headers in dlq:
            kind = key.removeprefix("bad-")
            got[kind] = headers["iotstream.reason"].decode()
            if kind in CORPUS:
                assert value == CORPUS[kind][0], f"{kind}: the original bytes must be kept"
            assert headers.get("iotstream.detail"), f"{kind}: a dead letter says what was wrong"
        wrong = {k: (got.get(k), want) for k, want in expected.items() if got.get(k) != want}
        assert not wrong, f"kind: (dead-letter reason, expected): {wrong}"
        assert len(dlq) == len(expected), Counter(k for k, _, _ in dlq).most_common(3)

        windows = [json.loads(v)["data"] for _, v, _ in consume_all(broker.bootstrap, "iot-windows")]
        assert sorted(w["sensor_id"] for w in windows) == ["g0", "g1", "g2"]
        assert sum(w["sample_count"] for w in windows) == len(good)

        assert summary["consumed"] == len(records) + 1
        assert summary["decoded"] == len(good)
        assert summary["dead_lettered"]["decoder"] == len(expected)
        assert summary["dead_lettered"]["by_reason"] == dict(Counter(expected.values()))
    finally:
        broker.stop()
