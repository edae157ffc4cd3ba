"""Hostile-input bounds (issue 12): a sensor_id over decoder.max_sensor_id_bytes is dead-lettered
as sensor_id_too_long, and a reading of a new sensor on a partition that already has
limits.max_open_sensors_per_partition sensors with open state is dead-lettered as
too_many_sensors, with a warning; the pipeline keeps running, and a sensor leaves the count
once its windows closed, so new sensors are admitted again."""
from conftest import Broker, HostProcess, consume_all, envelope, produce, windows_of
from correctness import T0, fast_config, host_args, produce_rows, wait_until

GOOD = {"temperature": 21.5, "humidity": 40.0, "pressure": 1010.0, "battery_level": 80.0}


def dead_letters(bootstrap):
    return [(k, h["iotstream.reason"].decode()) for k, _v, h in consume_all(bootstrap, "iot-dlq", timeout=5, idle=0.5)]


def test_open_sensor_limit_and_sensor_id_length_dead_letter_and_the_pipeline_goes_on(tmp_path):
    broker = Broker(tmp_path, partitions=1)
    try:
        config = fast_config(tmp_path, limits={"max_open_sensors_per_partition": 3},
                             decoder={"max_sensor_id_bytes": 32}, commit_interval_ms=200)
        host = HostProcess(*host_args(broker.bootstrap, "bounds", config))
        # Three sensors open windows of [T0, T0 + 60 s); two more are over the limit.
        produce_rows(broker.bootstrap, [(s, T0 + i * 100, GOOD) for i, s in enumerate(["a", "b", "c"])])
        host.wait_consumed(3)
        long_id = "x" * 33
        produce(broker.bootstrap, [("d", envelope("d", T0 + 1000, GOOD)), ("e", envelope("e", T0 + 1100, GOOD)),
                                   (long_id, envelope(long_id, T0 + 1200, GOOD))])
        produce_rows(broker.bootstrap, [("a", T0 + 2000, GOOD)])  # a known sensor still goes through
        wait_until(lambda: sorted(dead_letters(broker.bootstrap)) ==
                   [("d", "too_many_sensors"), ("e", "too_many_sensors"), (long_id, "sensor_id_too_long")],
                   30, "the dead letters of d, e and the long id")
        host.wait_log(lambda line: "too_many_sensors" in line and "max_open_sensors_per_partition" in line)

        # The watermark passes the windows' end plus grace: a, b and c's windows close and are
        # emitted, so they leave the count (a stays: its new reading opens a new window).
        produce_rows(broker.bootstrap, [("a", T0 + 70_000, GOOD)])
        wait_until(lambda: {w["sensor_id"] for w in windows_of(consume_all(broker.bootstrap, "iot-windows",
                                                                               timeout=5, idle=0.5))} >= {"a", "b", "c"},
                   30, "the windows of a, b and c")
        produce_rows(broker.bootstrap, [("f", T0 + 71_000, GOOD), ("g", T0 + 71_500, GOOD)])
        host.wait_consumed(10)
        assert host.proc.poll() is None, host.output()
        assert host.stop() == 0, host.output()  # --on-stop resume: f and g's windows stay open

        reasons = sorted(dead_letters(broker.bootstrap))
        assert reasons == [("d", "too_many_sensors"), ("e", "too_many_sensors"), (long_id, "sensor_id_too_long")], \
            f"f and g were admitted once b and c left the count: {reasons}\n{host.output()}"
        windows = windows_of(consume_all(broker.bootstrap, "iot-windows"))
        assert {(w["sensor_id"], w["sample_count"]) for w in windows} == {("a", 2), ("b", 1), ("c", 1)}
    finally:
        broker.stop()


def test_the_limits_are_documented_config_keys_with_checked_values(tmp_path):
    """Out-of-range values are refused by key name at start."""
    import iotstream
    for doc, key in (({"limits": {"max_open_sensors_per_partition": -1}}, "max_open_sensors_per_partition"),
                     ({"decoder": {"max_sensor_id_bytes": 0}}, "max_sensor_id_bytes")):
        try:
            iotstream.Pipeline(dict(doc, kafka={"bootstrap.servers": "127.0.0.1:1"}))
        except iotstream.IotstreamError as e:
            assert key in str(e)
        else:
            raise AssertionError(f"{doc} was accepted")
