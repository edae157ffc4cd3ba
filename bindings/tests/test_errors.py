"""Core error codes become a Python exception hierarchy carrying the core's message."""
import json

import pytest

import iotstream
from iotstream import _native, errors


def test_every_core_code_has_its_class_with_the_core_name():
    table = _native.error_table()
    assert len(table) >= 13  # the codes of ABI 1.0, and any appended since
    for code, name, description in table:
        exc = errors.error_from_code(code, "why")
        assert type(exc) is not errors.IotstreamError, name
        assert exc.code == code
        assert type(exc).code_name == name == _native.err_name(code)
        assert description == _native.err_str(code) and description in type(exc).__doc__
        assert str(exc) == "why"


def test_error_table_lists_each_code_once_counting_down_from_minus_one():
    codes = [code for code, _, _ in _native.error_table()]
    assert codes == list(range(-1, -1 - len(codes), -1))
    assert len({name for _, name, _ in _native.error_table()}) == len(codes)


def test_unknown_code_still_raises_the_base_class():
    exc = errors.error_from_code(-999, "odd")
    assert type(exc) is errors.IotstreamError and exc.code == -999


def test_builtin_bases_let_callers_catch_broadly():
    assert issubclass(iotstream.ConfigError, ValueError)
    assert issubclass(iotstream.TimedOutError, TimeoutError)
    assert issubclass(iotstream.StateError, RuntimeError)
    assert issubclass(iotstream.NotFoundError, LookupError)


def test_unknown_pipeline_key_is_a_config_error_naming_the_key(broker):
    with pytest.raises(iotstream.ConfigError, match="no_such_key") as info:
        iotstream.Pipeline({"no_such_key": 1}, bootstrap=broker)
    assert info.value.code == -2


def test_refused_kafka_property_carries_librdkafkas_message(broker):
    with pytest.raises(iotstream.IotstreamError, match="not.a.real.property"):
        iotstream.Producer(broker, kafka={"not.a.real.property": "x"})


def test_missing_stage_plugin_is_a_plugin_error_naming_it(broker):
    with pytest.raises(iotstream.PluginError, match="nonexistent"):
        iotstream.Pipeline({"stages": [{"plugin": "nonexistent"}]}, bootstrap=broker)


def test_bad_stage_config_names_the_plugin_key(broker):
    with pytest.raises(iotstream.IotstreamError, match="size_s"):
        iotstream.Pipeline({"stages": [{"plugin": "window", "config": {"size_s": "ten"}}]}, bootstrap=broker)


def test_use_after_close_is_a_state_error(broker):
    producer = broker.producer()
    producer.close()
    producer.close()  # idempotent
    with pytest.raises(iotstream.StateError, match="closed"):
        producer.send("s", {"temperature": 1.0})
    consumer = broker.consumer("iot-readings")
    consumer.close()
    with pytest.raises(iotstream.StateError):
        consumer.poll(timeout=0)


def test_broker_config_is_validated():
    with pytest.raises(iotstream.ConfigError):
        iotstream.Broker(brokers=0)


def test_log_level_names_are_checked():
    iotstream.set_log_level("error")
    assert iotstream.get_log_level() == "error"
    iotstream.set_log_level("warn")
    with pytest.raises(iotstream.InvalidArgumentError, match="loud"):
        iotstream.set_log_level("loud")
