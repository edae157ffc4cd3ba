"""iotstream: IoT sensor telemetry through Apache Kafka, analysed as it flows.

A Pythonic layer over libiotstream's C API (the native module ``iotstream._native``):

- :class:`Broker` - an embedded Kafka broker for tests and notebooks;
- :class:`Producer` - readings from single dicts, lists of dicts or pandas DataFrames, turned
  into the seed's JSON envelope and sent in C++;
- :class:`Consumer` - consumer-group batches as records or DataFrames;
- :class:`Pipeline` - anomaly rules, per-sensor aggregates and event-time windows, from a dict,
  run for a duration or bounded; results as DataFrames (:meth:`Pipeline.windows`, ...);
- :func:`describe_plugins` - the plugins in a folder with their config keys;
- :func:`defaults` - the topic names, default stages and every pipeline key with its default;
- :class:`LoadGenerator` - the seed's synthetic load;
- :class:`Ingest` - the gateway's ingestion service: devices' payloads validated, rate-limited
  per device and produced, one result per reading.

Errors are :class:`iotstream.errors.IotstreamError` subclasses carrying the core's message
(e.g. :class:`ConfigError` names the refused key). Blocking calls release the GIL and can be
interrupted with Ctrl-C.

Quick start::

    import iotstream
    with iotstream.Broker() as broker, broker.producer() as producer:
        producer.send("sensor-1", {"temperature": 21.5, "humidity": 40.0, "pressure": 1013.0})
        producer.flush()
        with broker.pipeline(window={"size_s": 2, "grace_s": 1}) as pipeline:
            pipeline.run_bounded()
            print(pipeline.windows())
"""
from __future__ import annotations

from typing import Union

from . import _native
from ._broker import Broker
from ._client import Batch, Consumer, DeliveryFailure, Producer, ProducerStats, Record
from ._common import TOPICS, defaults
from ._ingest import Ingest, IngestResult
from ._pipeline import (ConfigKey, LoadGenerator, Pipeline, Results, PluginCatalog, PluginInfo, default_plugin_dir,
                        describe_plugins)
from .errors import (BufferTooSmallError, ConfigError, HandlerError, InternalError, InvalidArgumentError,
                     IotstreamError, KafkaError, NoMemoryError, NotFoundError, PluginError, QueueFullError,
                     StateError, TimedOutError, UnsupportedError)

__version__: str = _native.version_str()

import os as _os

# Notebooks want warnings, not the library's info chatter; IOTSTREAM_LOG_LEVEL overrides.
_native.log_set_level({"trace": 0, "debug": 1, "info": 2, "warn": 3, "warning": 3, "error": 4, "critical": 5,
                       "off": 6}.get(_os.environ.get("IOTSTREAM_LOG_LEVEL", "warn").lower(), 3))

_LOG_LEVELS = {"trace": 0, "debug": 1, "info": 2, "warn": 3, "warning": 3, "error": 4, "critical": 5, "off": 6}


def version() -> str:
    """Version of the loaded libiotstream, e.g. "0.1.0"."""
    return _native.version_str()


def set_log_level(level: Union[str, int]) -> None:
    """Minimum level the library logs to stderr: "trace", "debug", "info", "warn", "error",
    "critical" or "off" (process-wide)."""
    if isinstance(level, str):
        if level.lower() not in _LOG_LEVELS:
            raise InvalidArgumentError(f"log level {level!r} is not one of {', '.join(_LOG_LEVELS)}")
        level = _LOG_LEVELS[level.lower()]
    _native.log_set_level(level)


def get_log_level() -> str:
    """The current minimum log level's name."""
    value = _native.log_get_level()
    return next(name for name, v in _LOG_LEVELS.items() if v == value)


__all__ = [
    "Broker", "Producer", "Consumer", "Record", "Batch", "ProducerStats", "DeliveryFailure", "TOPICS",
    "Pipeline", "Results", "LoadGenerator", "Ingest", "IngestResult", "describe_plugins", "default_plugin_dir", "PluginCatalog", "PluginInfo",
    "ConfigKey", "defaults", "version", "set_log_level", "get_log_level",
    "IotstreamError", "InvalidArgumentError", "ConfigError", "KafkaError", "QueueFullError", "TimedOutError",
    "StateError", "NoMemoryError", "InternalError", "PluginError", "NotFoundError", "BufferTooSmallError",
    "HandlerError", "UnsupportedError",
]
