"""The embedded broker, and the clients it makes."""
from __future__ import annotations

import json
from typing import Any, Dict, Mapping, Optional, Sequence, Union

from . import _native
from ._client import Consumer, Producer
from ._common import TOPICS, BootstrapSource, defaults
from ._ingest import Ingest
from ._pipeline import Pipeline

__all__ = ["Broker"]


class Broker(BootstrapSource):
    """An embedded Kafka broker (librdkafka's mock cluster) on loopback, for tests and notebooks.

    Args:
        topics: topics created up front: a mapping ``{name: partitions}``, or a list of names
            (each with ``partitions``). None creates the five iotstream topics (:data:`TOPICS`).
        partitions: partition count for names given as a list (None: the core's default).
        brokers: number of brokers in the cluster (1..16).

    Use it as a context manager, or call :meth:`close`. Other topics are created on first use.
    The mock broker keeps only about 5 MB of batches per partition; size runs accordingly.

    >>> with iotstream.Broker() as broker:
    ...     producer = broker.producer()
    """

    def __init__(self, topics: Union[Mapping[str, int], Sequence[str], None] = None, *,
                 partitions: Optional[int] = None, brokers: int = 1) -> None:
        if partitions is None:
            partitions = defaults()["partitions"]
        config: Dict[str, Any] = {"brokers": brokers}
        if topics is None:
            topics = {name: partitions for name in TOPICS.values()}
        elif not isinstance(topics, Mapping):
            if isinstance(topics, str):
                raise TypeError("topics must be a list of names or a {name: partitions} mapping, not a str")
            topics = {name: partitions for name in topics}
        config["topics"] = [{"name": name, "partitions": count} for name, count in topics.items()]
        self._native = _native.Broker(json.dumps(config))

    @property
    def bootstrap(self) -> str:
        """Bootstrap servers, "127.0.0.1:PORT[,...]", for any Kafka client."""
        return self._native.bootstrap

    def create_topic(self, topic: str, partitions: Optional[int] = None) -> None:
        """Creates a topic (None partitions: the core's default); KafkaError if it exists with
        another partition count."""
        if partitions is None:
            partitions = defaults()["partitions"]
        self._native.create_topic(topic, partitions)

    def set_down(self, broker_id: int, down: bool = True) -> None:
        """Fault injection: takes broker ``broker_id`` (1-based) down, or back up."""
        self._native.set_down(broker_id, down)

    def set_rtt(self, broker_id: int, rtt_ms: int) -> None:
        """Fault injection: adds ``rtt_ms`` round-trip time to broker ``broker_id``."""
        self._native.set_rtt(broker_id, rtt_ms)

    def set_partition_leader(self, topic: str, partition: int, broker_id: int) -> None:
        """Fault injection: makes broker ``broker_id`` the leader of ``topic`` [``partition``]
        (-1: no leader until set again). The partition's records stay."""
        self._native.set_partition_leader(topic, partition, broker_id)

    def set_coordinator(self, kind: str, key: str, broker_id: int) -> None:
        """Fault injection: moves the coordinator of consumer group ``key`` (``kind`` "group") or
        of transactional id ``key`` (``kind`` "transaction") to broker ``broker_id``."""
        self._native.set_coordinator(kind, key, broker_id)

    def push_request_errors(self, api_key: int, count: int, kafka_error: int) -> None:
        """Fault injection: the next ``count`` requests of Kafka API ``api_key`` (0 Produce,
        1 Fetch, 8 OffsetCommit, ...) fail with Kafka error code ``kafka_error``."""
        self._native.push_request_errors(api_key, count, kafka_error)

    def producer(self, **options: Any) -> Producer:
        """A :class:`Producer` connected to this broker."""
        return Producer(self, **options)

    def consumer(self, topics: Union[str, Sequence[str]], **options: Any) -> Consumer:
        """A :class:`Consumer` of ``topics`` on this broker."""
        return Consumer(self, topics, **options)

    def ingest(self, **options: Any) -> Ingest:
        """An :class:`iotstream.Ingest` (the gateway's ingestion service) producing to this broker."""
        return Ingest(self, **options)

    def pipeline(self, config: Optional[Mapping[str, Any]] = None, **options: Any) -> Pipeline:
        """An :class:`iotstream.Pipeline` reading from and writing to this broker."""
        return Pipeline(config, bootstrap=self, **options)

    @property
    def closed(self) -> bool:
        return self._native.closed

    def close(self) -> None:
        """Stops the broker. Clients still connected see it go away. Idempotent."""
        self._native.close()

    def __enter__(self) -> "Broker":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<iotstream.Broker {'closed' if self.closed else self.bootstrap}>"
