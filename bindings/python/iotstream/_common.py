"""What every client shares: the topic names and defaults, bootstrap servers and timeouts.

Imports nothing else of the package but the native module and errors, so any module can import it.
"""
from __future__ import annotations

import copy
import json
from typing import Any, Dict, Mapping, Optional, Union

from . import _native
from .errors import InvalidArgumentError

__all__ = ["TOPICS", "defaults", "BootstrapSource", "BootstrapLike", "ms", "bootstrap_servers", "kafka_section"]

# The core's names and defaults (iots_defaults_json()): written once, in the core.
_DEFAULTS: Dict[str, Any] = json.loads(_native.defaults_json())

#: The iotstream topics: input readings and the pipeline's outputs, e.g. ``TOPICS["readings"]``.
TOPICS: Dict[str, str] = dict(_DEFAULTS["topics"])


def defaults() -> Dict[str, Any]:
    """The core's names and defaults: ``topics`` (as :data:`TOPICS`), ``partitions`` (per topic of
    the embedded broker), ``stages`` (the default pipeline stages) and ``keys``: every key of the
    pipeline document as ``{"path", "type", "default", "required", "help"}`` (int keys also
    ``"min"``, ``"max"``), in docs/pipeline.md's order. A fresh copy on every call."""
    return copy.deepcopy(_DEFAULTS)


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


