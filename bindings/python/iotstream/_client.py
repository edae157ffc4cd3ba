"""Producer and consumer."""
from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from typing import (Any, Dict, Iterable, Iterator, List, Mapping, NamedTuple, Optional, Sequence,
                    Union)

import numpy as np

from . import _native
from ._convert import (TimestampLike, columns_to_frame, data_json, frame_columns, timestamps_column,
                       to_epoch_ms)
from ._common import TOPICS, BootstrapLike, kafka_section, ms
from .errors import InvalidArgumentError, IotstreamError

__all__ = ["Producer", "Consumer", "Record", "Batch", "ProducerStats", "DeliveryFailure"]

@dataclass(frozen=True)
class ProducerStats:
    """Producer counters (monotonic except ``queue_depth``)."""
    sent: int          #: accepted into the local queue
    delivered: int     #: acknowledged by the broker
    failed: int        #: reported failed after librdkafka's retries
    retried: int       #: produce requests librdkafka retried
    bytes: int         #: value bytes accepted
    queue_full: int    #: sends refused after waiting queue_full_timeout_ms
    queue_depth: int   #: accepted but not yet delivered or failed


class DeliveryFailure(NamedTuple):
    """A message the broker did not acknowledge (the first 100 are kept)."""
    topic: str
    partition: int
    key: bytes
    reason: str


class Producer:
    """Sends readings in the seed's envelope
    ``{"sensor_id", "timestamp", "data", "message_id"}``, keyed by sensor id.

    Args:
        bootstrap: "host:port" or a :class:`Broker`.
        topic: default topic for readings.
        queue_full_timeout_ms: how long a send waits for queue room before QueueFullError.
        kafka: librdkafka properties, e.g. ``{"compression.type": "lz4", "linger.ms": 20}``.

    Batches (:meth:`send_frame`, :meth:`send_batch`) are turned into envelopes and sent in C++
    without the GIL; Ctrl-C interrupts them between slices of 16384 rows.
    """

    def __init__(self, bootstrap: BootstrapLike, *, topic: str = TOPICS["readings"],
                 queue_full_timeout_ms: Optional[int] = None,
                 kafka: Optional[Mapping[str, Any]] = None) -> None:
        config: Dict[str, Any] = {"topic": topic, "kafka": kafka_section(bootstrap, kafka)}
        if queue_full_timeout_ms is not None:
            config["queue_full_timeout_ms"] = queue_full_timeout_ms
        self.topic = topic
        self._native = _native.Producer(json.dumps(config))

    def send(self, sensor_id: str, data: Union[Mapping[str, Any], str], *,
             timestamp: Optional[TimestampLike] = None, topic: Optional[str] = None) -> None:
        """Sends one reading. ``data`` is a dict (or JSON object text); ``timestamp`` is the
        event time (datetime, ISO-8601 text or epoch ms; default: now)."""
        ts = None if timestamp is None else np.array([to_epoch_ms(timestamp)], dtype=np.int64)
        self._native.send_envelopes(topic, [sensor_id], [data_json(data, "data")], ts)

    def send_batch(self, readings: Iterable[Mapping[str, Any]], *, topic: Optional[str] = None) -> int:
        """Sends a list of readings and returns how many were accepted.

        Each reading is either the seed's shape ``{"sensor_id": ..., "data": {...}}`` (with an
        optional ``"timestamp"``), or a flat record ``{"sensor_id": ..., "temperature": ...}``
        (sent as :meth:`send_frame` would send a DataFrame of such rows).
        """
        readings = list(readings)
        if not readings:
            return 0
        if all(isinstance(r, Mapping) and "data" in r for r in readings):
            for i, r in enumerate(readings):
                if "sensor_id" not in r:
                    raise InvalidArgumentError(f"reading {i} has no 'sensor_id'")
            ids = [r["sensor_id"] for r in readings]
            data = [data_json(r["data"], f"reading {i}: data") for i, r in enumerate(readings)]
            stamps = [r.get("timestamp") for r in readings]
            ts = None
            if any(s is not None for s in stamps):
                if any(s is None for s in stamps):
                    raise InvalidArgumentError("either every reading has a 'timestamp' or none has")
                ts = np.array([to_epoch_ms(s, f"reading {i}: timestamp") for i, s in enumerate(stamps)],
                              dtype=np.int64)
            return self._native.send_envelopes(topic, ids, data, ts)
        import pandas as pd
        return self.send_frame(pd.DataFrame.from_records(readings), topic=topic)

    def send_frame(self, frame: Any, *, sensor_column: str = "sensor_id",
                   timestamp_column: Optional[str] = "timestamp",
                   columns: Union[Sequence[str], Mapping[str, str], None] = None,
                   topic: Optional[str] = None) -> int:
        """Sends every row of a pandas DataFrame as one reading; returns the rows accepted.

        Args:
            sensor_column: the column of sensor ids (the Kafka key).
            timestamp_column: event times (datetime64, epoch-ms integers or ISO text); when the
                frame has no such column, each reading is stamped with the time it is sent.
            columns: the columns that form ``data`` (default: all others). A mapping renames:
                ``{"lat": "location.lat"}``. Dotted names become nested objects.

        NaN (or None) leaves that field out of that reading. Values are converted column by
        column in C++; no Python code runs per row.
        """
        if sensor_column not in frame.columns:
            raise InvalidArgumentError(f"the frame has no sensor column {sensor_column!r}")
        has_time = timestamp_column is not None and timestamp_column in frame.columns
        if columns is None:
            names = [c for c in frame.columns if c != sensor_column and not (has_time and c == timestamp_column)]
            paths = [str(c) for c in names]
        elif isinstance(columns, Mapping):
            names, paths = list(columns.keys()), [str(p) for p in columns.values()]
        else:
            names = list(columns)
            paths = [str(c) for c in names]
        missing = [n for n in names if n not in frame.columns]
        if missing:
            raise InvalidArgumentError(f"the frame has no column(s) {missing}")
        ids = frame[sensor_column]
        if ids.dtype != object:
            ids = ids.astype(str)
        ts = timestamps_column(frame[timestamp_column], f"column {timestamp_column!r}") if has_time else None
        return self._native.send_columns(topic, ids.tolist(), ts, frame_columns(frame, names, paths))

    def send_raw(self, value: Union[bytes, str], *, key: Union[bytes, str, None] = None,
                 topic: Optional[str] = None) -> None:
        """Sends raw bytes (no envelope); useful for malformed-input tests and other formats."""
        as_bytes = lambda v: v.encode() if isinstance(v, str) else v  # noqa: E731
        self._native.send_raw(topic, None if key is None else as_bytes(key), as_bytes(value))

    def produce(self, readings: Any, *, topic: Optional[str] = None, **options: Any) -> int:
        """Sends a DataFrame (:meth:`send_frame`) or a list of dicts (:meth:`send_batch`)."""
        if hasattr(readings, "columns") and hasattr(readings, "iloc"):
            return self.send_frame(readings, topic=topic, **options)
        return self.send_batch(readings, topic=topic)

    def flush(self, timeout: Optional[float] = 30.0) -> None:
        """Waits until every accepted message is delivered or failed; TimedOutError otherwise."""
        self._native.flush(ms(timeout))

    def stats(self) -> ProducerStats:
        """The producer's counters."""
        return ProducerStats(**self._native.stats())

    def delivery_failures(self) -> List[DeliveryFailure]:
        """Messages the broker did not acknowledge, with librdkafka's reason (first 100)."""
        return [DeliveryFailure(*f) for f in self._native.delivery_failures()]

    @property
    def closed(self) -> bool:
        return self._native.closed

    def close(self, timeout: Optional[float] = 30.0) -> None:
        """Flushes (up to ``timeout``) and frees the producer. Idempotent."""
        self._native.close(ms(timeout))

    def __enter__(self) -> "Producer":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<iotstream.Producer topic={self.topic!r}{' closed' if self.closed else ''}>"


class Record(NamedTuple):
    """One consumed Kafka record."""
    topic: str
    partition: int
    offset: int
    timestamp_ms: int      #: the Kafka record timestamp, -1 if none
    key: Optional[bytes]
    value: bytes

    def json(self) -> Any:
        """The value decoded as JSON."""
        return json.loads(self.value)


class Batch(Sequence[Record]):
    """The records of one poll. Commit it with :meth:`Consumer.commit`."""

    def __init__(self, native: Any) -> None:
        self._native = native
        self._records: Optional[List[Record]] = None

    @property
    def records(self) -> List[Record]:
        if self._records is None:
            self._records = [Record(*r) for r in self._native.records()]
        return self._records

    def __len__(self) -> int:
        return len(self._native)

    def __getitem__(self, index: Any) -> Any:
        return self.records[index]

    def __iter__(self) -> Iterator[Record]:
        return iter(self.records)

    def json(self) -> List[Any]:
        """Every value decoded as JSON."""
        return [json.loads(v) for v in self._native.values()]

    def to_frame(self) -> Any:
        """A DataFrame: one row per record, envelopes flattened (see :meth:`Consumer.read_frame`)."""
        return columns_to_frame(self._native.columns())

    def __repr__(self) -> str:
        return f"<iotstream.Batch {len(self)} records>"


class Consumer:
    """A consumer-group member.

    Args:
        bootstrap: "host:port" or a :class:`Broker`.
        topics: topic name(s) to subscribe to.
        group_id: consumer group (default: a new group of its own, reading from the start).
        auto_offset_reset: "earliest" or "latest", where a group without commits starts.
        kafka: librdkafka properties.

    Iterating yields non-empty :class:`Batch` es until the consumer is closed; use
    :meth:`read`/:meth:`read_frame` to drain what a topic holds now. Offsets are committed
    only by :meth:`commit`.
    """

    _instances = 0

    def __init__(self, bootstrap: BootstrapLike, topics: Union[str, Sequence[str]], *,
                 group_id: Optional[str] = None, auto_offset_reset: str = "earliest",
                 kafka: Optional[Mapping[str, Any]] = None) -> None:
        self.topics = [topics] if isinstance(topics, str) else list(topics)
        if group_id is None:
            Consumer._instances += 1
            group_id = f"iotstream-python-{os.getpid()}-{Consumer._instances}-{time.monotonic_ns()}"
        self.group_id = group_id
        config = {"group_id": group_id, "topics": self.topics, "auto_offset_reset": auto_offset_reset,
                  "kafka": kafka_section(bootstrap, kafka)}
        self._native = _native.Consumer(json.dumps(config))

    def poll(self, max_records: int = 10000, timeout: Optional[float] = 1.0) -> Batch:
        """Waits up to ``timeout`` seconds (None: forever) for records; the batch may be empty."""
        return Batch(self._native.poll(max_records, ms(timeout)))

    def commit(self, batch: Batch) -> None:
        """Commits the offsets after ``batch``'s records, for partitions still assigned."""
        self._native.commit(batch._native)

    def subscribe(self, topics: Union[str, Sequence[str]]) -> None:
        """Replaces the subscription."""
        self.topics = [topics] if isinstance(topics, str) else list(topics)
        self._native.subscribe(self.topics)

    def pause(self) -> None:
        """Stops fetching for every assigned partition (backpressure)."""
        self._native.pause()

    def resume(self) -> None:
        """Resumes fetching."""
        self._native.resume()

    def lag(self, timeout: float = 5.0) -> List[Dict[str, Any]]:
        """Per-partition position, committed offset, high watermark and lag of the assignment."""
        return self._native.lag(ms(timeout))

    def stats(self) -> Dict[str, int]:
        """Counters: consumed, committed, commits, redelivered, bytes, rebalances, queue_depth."""
        return self._native.stats()

    def __iter__(self) -> Iterator[Batch]:
        while not self.closed:
            batch = self.poll()
            if len(batch):
                yield batch

    def batches(self, timeout: float = 30.0, idle: float = 1.0) -> Iterator[Batch]:
        """Yields the batches a topic holds now: stops once partitions are assigned and every
        assigned partition is read up to its end offset (checked whenever a poll comes back
        empty, so no time is spent waiting for silence); or after ``timeout``.

        The end offsets come from the fetch responses (cached by librdkafka, so the check costs
        no broker round trip once a partition has been fetched); a topic still being written
        keeps the drain going. A partition whose end offset counts a transaction marker (never
        delivered) can stay "behind" for ever: after ``max(5 * idle, 5)`` seconds without a
        record the drain ends all the same."""
        deadline = time.monotonic() + timeout
        last_data: Optional[float] = None  # the silence clock starts once partitions are assigned
        while time.monotonic() < deadline:
            batch = self.poll(timeout=min(0.1, max(0.0, deadline - time.monotonic())))
            if len(batch):
                last_data = time.monotonic()
                yield batch
                continue
            stats = self.stats()
            if stats["rebalances"] == 0:
                continue  # the group has not assigned partitions yet
            if last_data is None or stats["queue_depth"] > 0:
                last_data = time.monotonic()
            if stats["queue_depth"] == 0 and (self._read_to_the_end(deadline) or
                                              time.monotonic() - last_data >= max(5 * idle, 5.0)):
                return

    def _read_to_the_end(self, deadline: float) -> bool:
        remaining = max(0.1, deadline - time.monotonic())
        try:
            partitions = self.lag(timeout=min(remaining, 5.0))
        except IotstreamError:
            return False
        return all(p["lag"] == 0 for p in partitions)

    def read(self, timeout: float = 30.0, idle: float = 1.0) -> List[Record]:
        """Every record the topics hold now (see :meth:`batches`)."""
        return [r for b in self.batches(timeout, idle) for r in b]

    def read_frame(self, timeout: float = 30.0, idle: float = 1.0) -> Any:
        """What :meth:`read` returns, as a DataFrame. Envelopes become their ``data`` fields
        (nested keys joined with dots) plus ``sensor_id``, ``timestamp`` (UTC datetime) and
        ``message_id``; other JSON objects are flattened; anything else lands in ``value``."""
        columns = _native.Columns()  # values decoded into columns in C++, batch by batch
        for batch in self.batches(timeout, idle):
            columns.add_batch(batch._native)
        return columns_to_frame(columns.columns())

    @property
    def closed(self) -> bool:
        return self._native.closed

    def close(self) -> None:
        """Leaves the group cleanly and frees the consumer. Idempotent."""
        self._native.close()

    def __enter__(self) -> "Consumer":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<iotstream.Consumer {self.topics} group={self.group_id!r}{' closed' if self.closed else ''}>"
