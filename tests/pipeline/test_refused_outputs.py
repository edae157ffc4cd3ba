"""No single output stops the pipeline: an output the broker refuses for good goes to the DLQ
with its reason, one refused for a transient reason is sent again, and offsets are committed
only once the output, or its dead letter, was acknowledged. Errors are injected into the
embedded cluster's Produce responses (after the inputs were written)."""
import json

import iotstream
from conftest import consume_all, readings
from correctness import HOT, T0, committed_offsets, model, pipeline_config, produce_rows, with_hot_readings

PRODUCE = 0  # Kafka API key
MSG_SIZE_TOO_LARGE = 10  # permanent: this record can never be taken
NOT_ENOUGH_REPLICAS = 19  # transient: librdkafka retries, then gives up; the pipeline sends again

RESULT_TOPICS = ("iot-windows", "iot-aggregates", "iot-alerts")


def bounded_run_with_produce_errors(cluster, group, count, kafka_error, **config):
    """Writes the inputs, makes the next `count` Produce requests fail with `kafka_error`, then
    runs a bounded pipeline. Returns (rows, stats, the IotstreamError raised or None)."""
    rows = with_hot_readings(readings(sensors=6, start_ms=T0, end_ms=T0 + 120_000, step_ms=2000), share=0.1, seed=3)
    produce_rows(cluster.bootstrap, rows)
    cluster.push_request_errors(PRODUCE, count, kafka_error)
    pipeline = iotstream.Pipeline(pipeline_config(cluster.bootstrap, group, **config))
    raised = None
    try:
        pipeline.run_bounded(timeout=60)
    except iotstream.IotstreamError as e:
        raised = e
    stats = pipeline.stats()
    pipeline.close()
    return rows, stats, raised


def window_keys(values):
    return sorted((w["sensor_id"], w["window_start"]) for w in (json.loads(v)["data"] for v in values))


def test_an_output_the_broker_refuses_is_dead_lettered_with_its_reason_and_the_run_goes_on():
    with iotstream.Broker(partitions=2) as cluster:
        rows, stats, raised = bounded_run_with_produce_errors(cluster, "refused", 2, MSG_SIZE_TOO_LARGE)
        assert raised is None and not stats["failed"], stats["error"]
        outputs = stats["outputs"]
        assert outputs["refused"] >= 1 and outputs["failed"] == 0, outputs
        assert outputs["sent"] == outputs["delivered"] + outputs["refused"] + outputs["retried"], outputs
        assert stats["dead_lettered"]["outputs"] == outputs["refused"]
        assert stats["dead_lettered"]["by_reason"]["output_refused"] == outputs["refused"]

        dlq = consume_all(cluster.bootstrap, "iot-dlq")
        refused = [(k, v, h) for k, v, h in dlq if h["iotstream.reason"] == b"output_refused"]
        assert len(refused) == outputs["refused"], [h for _k, _v, h in dlq]
        for _key, _value, headers in refused:
            assert headers["iotstream.output"].decode() in RESULT_TOPICS
            assert headers["iotstream.error"] == b"MSG_SIZE_TOO_LARGE"
            assert b"Message size too large" in headers["iotstream.detail"]

        # Each result is in its topic or, refused, in the DLQ: none lost, none twice.
        delivered = [v for _k, v, _h in consume_all(cluster.bootstrap, "iot-windows")]
        dead = [v for _k, v, h in refused if h["iotstream.output"] == b"iot-windows"]
        assert window_keys(delivered + dead) == sorted(model(rows, 60, 5))
        alerts = [v for _k, v, _h in consume_all(cluster.bootstrap, "iot-alerts")]
        alerts += [v for _k, v, h in refused if h["iotstream.output"] == b"iot-alerts"]
        assert len(alerts) == sum(1 for _s, _t, d in rows if d["temperature"] == HOT)
        # Everything was handled, so the run committed to the end.
        assert all(offset > 0 for offset in committed_offsets(cluster.bootstrap, "refused").values())


def test_an_output_refused_for_a_transient_reason_is_sent_again():
    with iotstream.Broker(partitions=2) as cluster:
        # More failures than librdkafka's own retries (1 here) absorb: some outputs fail back to us.
        rows, stats, raised = bounded_run_with_produce_errors(
            cluster, "transient", 12, NOT_ENOUGH_REPLICAS, producer={"kafka": {"retries": 1, "retry.backoff.ms": 10}})
        assert raised is None and not stats["failed"], stats["error"]
        outputs = stats["outputs"]
        assert outputs["retried"] >= 1 and outputs["refused"] == 0 and outputs["failed"] == 0, outputs
        assert not consume_all(cluster.bootstrap, "iot-dlq")
        delivered = [v for _k, v, _h in consume_all(cluster.bootstrap, "iot-windows")]
        assert window_keys(delivered) == sorted(model(rows, 60, 5))


def test_when_the_dlq_refuses_too_the_run_stops_and_nothing_is_committed():
    """A refused output counts as handled only once its dead letter is acknowledged."""
    with iotstream.Broker(partitions=2) as cluster:
        _rows, stats, raised = bounded_run_with_produce_errors(cluster, "all-refused", 100_000, MSG_SIZE_TOO_LARGE)
        assert "refused a dead letter" in str(raised)
        assert stats["failed"] and stats["outputs"]["refused"] >= 1
        assert all(offset < 0 for offset in committed_offsets(cluster.bootstrap, "all-refused").values())
