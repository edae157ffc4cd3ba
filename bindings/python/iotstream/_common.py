"""What every client shares: the topic names, bootstrap servers and timeouts.

Imports nothing else of the package but errors, so any module can import it.
"""
from __future__ import annotations

from typing import Any, Dict, Mapping, Optional, Union

from .errors import InvalidArgumentError

__all__ = ["TOPICS", "BootstrapSource", "BootstrapLike", "ms", "bootstrap_servers", "kafka_section"]

#: The iotstream topics: input readings and the pipeline's outputs.
TOPICS = {"readings": "iot-readings", "windows": "iot-windows", "aggregates": "iot-aggregates",
          "alerts": "iot-alerts", "dlq": "iot-dlq"}


class BootstrapSource:
    """Something that serves Kafka bootstrap servers: the embedded :class:`Broker` (a base
    class here, so that clients accept a Broker without importing the module that makes them)."""

    @property
    def bootstrap(self) -> str:
        raise NotImplementedError


#: "host:port[,host:port...]" or a :class:`Broker`.
BootstrapLike = Union[str, BootstrapSource]


def ms(seconds: Optional[float]) -> int:
    """Seconds (None: wait forever) as the core's milliseconds (-1: forever)."""
    if seconds is None:
        return -1
    if seconds < 0:
        raise InvalidArgumentError(f"timeout must be >= 0 seconds or None, got {seconds}")
    return int(round(seconds * 1000))


def bootstrap_servers(bootstrap: BootstrapLike) -> str:
    if isinstance(bootstrap, BootstrapSource):
        return bootstrap.bootstrap
    if isinstance(bootstrap, str) and bootstrap:
        return bootstrap
    raise TypeError("bootstrap must be 'host:port[,host:port...]' or an iotstream.Broker")


def kafka_section(bootstrap: BootstrapLike, kafka: Optional[Mapping[str, Any]]) -> Dict[str, Any]:
    section = dict(kafka or {})
    section.setdefault("bootstrap.servers", bootstrap_servers(bootstrap))
    return section


