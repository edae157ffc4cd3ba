"""The ingestion service: devices' payloads in, validated and rate-limited readings to Kafka."""
from __future__ import annotations

import json
from typing import Any, Dict, List, Mapping, NamedTuple, Optional, Union

from . import _native
from ._common import TOPICS, BootstrapLike, kafka_section, ms

__all__ = ["Ingest", "IngestResult"]

Payload = Union[bytes, bytearray, memoryview, str, Mapping[str, Any], List[Any]]


class IngestResult(NamedTuple):
    """What became of one reading of a payload (iotstream.h: ``iots_ingest_item_t``).

    ``status`` is "accepted", "invalid", "rate_limited", "backpressure", "too_large" or
    "forbidden"; ``reason`` the machine-readable why ("" when accepted; for "invalid" the
    decoder's reason, e.g. "missing_field"); ``detail`` names the field or limit;
    ``retry_after_ms`` is set for "rate_limited".
    """
    status: str
    reason: str
    detail: str
    retry_after_ms: int

    @property
    def accepted(self) -> bool:
        return self.status == "accepted"


class Ingest:
    """The core's ingestion service in this process: what ``iotstream-host gateway`` runs behind
    HTTP and MQTT, for a Python gateway or a notebook that receives devices' payloads itself.

    Each payload (one reading, a JSON array of readings, or NDJSON) is split into readings,
    each checked with the pipeline decoder's rules, charged to the device's token bucket,
    wrapped in the seed's envelope and produced keyed by ``sensor_id``.

    Args:
        bootstrap: "host:port" or a :class:`Broker`.
        rate, burst: each device's token bucket (readings/s and capacity).
        devices: per-device overrides, ``{"device-7": {"rate": 100, "burst": 200}}``.
        sensor_ids: "own" (a reading's sensor_id must be the device id) or "any".
        dead_letter_topic: also produce invalid and too-large readings there, with the reason.
        topic: where readings go.
        config: further keys of ``iots_ingest_new`` (``max_devices``, ``max_payload_bytes``,
            ``max_readings``, ``decoder``), and ``kafka``: producer properties.

    >>> with broker.ingest(rate=5, burst=5) as ingest:
    ...     ingest.submit("sensor-1", {"data": {"temperature": 21.5, "humidity": 40, "pressure": 1013}})
    [IngestResult(status='accepted', reason='', detail='', retry_after_ms=0)]
    """

    def __init__(self, bootstrap: BootstrapLike, *, rate: Optional[float] = None, burst: Optional[float] = None,
                 devices: Optional[Mapping[str, Mapping[str, float]]] = None, sensor_ids: str = "own",
                 dead_letter_topic: Optional[str] = None, topic: str = TOPICS["readings"],
                 kafka: Optional[Mapping[str, Any]] = None, **config: Any) -> None:
        document: Dict[str, Any] = dict(config)
        document.update({"topic": topic, "sensor_ids": sensor_ids,
                         "producer": {"kafka": kafka_section(bootstrap, kafka)}})
        if rate is not None:
            document["rate"] = rate
        if burst is not None:
            document["burst"] = burst
        if devices is not None:
            document["devices"] = {device: dict(limits) for device, limits in devices.items()}
        if dead_letter_topic is not None:
            document["dead_letter_topic"] = dead_letter_topic
        self._native = _native.Ingest(json.dumps(document))

    def submit(self, device_id: str, payload: Payload) -> List[IngestResult]:
        """Ingests one payload from ``device_id``: bytes or str as a device sends it, or a dict
        (one reading) or list (readings) to be sent as JSON. One result per reading, in order;
        a payload that cannot be split into readings, or is over a limit, gives one result."""
        if isinstance(payload, (Mapping, list)):
            body = json.dumps(payload).encode()
        elif isinstance(payload, str):
            body = payload.encode()
        else:
            body = bytes(payload)
        return [IngestResult(*item) for item in self._native.submit(device_id, body)]

    def stats(self) -> Dict[str, int]:
        """Counters: payloads, readings by result, token buckets held and evicted."""
        return self._native.stats()

    @property
    def closed(self) -> bool:
        return self._native.closed

    def close(self, timeout: Optional[float] = 10.0) -> bool:
        """Flushes the accepted readings (up to ``timeout`` seconds) and frees the service;
        False if some could not be delivered. Idempotent."""
        return self._native.close(ms(timeout))

    def __enter__(self) -> "Ingest":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<iotstream.Ingest {'closed' if self.closed else 'open'}>"
