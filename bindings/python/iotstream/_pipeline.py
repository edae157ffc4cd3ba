"""Pipelines, the load generator and plugin descriptions."""
from __future__ import annotations

import copy
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterator, List, Mapping, NamedTuple, Optional, Sequence, Union

from . import _native
from ._common import TOPICS, BootstrapLike, bootstrap_servers, defaults, ms
from ._convert import columns_to_frame, flatten
from .errors import InvalidArgumentError, NotFoundError

__all__ = ["Pipeline", "Results", "LoadGenerator", "PluginInfo", "ConfigKey", "PluginCatalog", "describe_plugins",
           "default_plugin_dir"]


def default_plugin_dir() -> Optional[str]:
    """The plugin folder used when a config names none: $IOTSTREAM_PLUGIN_DIR, else the
    plugins shipped inside this package (pip installs), else None (the core's built-in folder)."""
    env = os.environ.get("IOTSTREAM_PLUGIN_DIR")
    if env:
        return env
    bundled = Path(__file__).with_name("plugins")
    return str(bundled) if bundled.is_dir() else None


@dataclass(frozen=True)
class ConfigKey:
    """One configuration key a plugin accepts."""
    name: str
    type: str
    default: Any   #: the default value (None where the plugin requires the key or has no default)
    required: bool
    help: str


@dataclass(frozen=True)
class PluginInfo:
    """A plugin as its descriptor presents it."""
    name: str
    kind: str
    version: str
    description: str
    config: List[ConfigKey]
    raw: Dict[str, Any] = field(repr=False)  #: the whole description, including fields not listed here

    def help(self) -> str:
        """A readable summary of the plugin and its configuration keys."""
        lines = [f"{self.name} {self.version} ({self.kind}): {self.description}"]
        for key in self.config:
            default = "(required)" if key.required else f"default {json.dumps(key.default)}"
            lines.append(f"  {key.name:<18} {key.type:<7} {default:<24} {key.help}")
        return "\n".join(lines)


@dataclass(frozen=True)
class PluginCatalog:
    """The plugins in a folder, and the files that were rejected (with the reason)."""
    dir: str
    plugins: List[PluginInfo]
    rejected: List[Dict[str, Any]]

    def __getitem__(self, name: str) -> PluginInfo:
        for p in self.plugins:
            if p.name == name:
                return p
        raise NotFoundError(f"no plugin named {name!r} in {self.dir} (have: {', '.join(self.names)})")

    def __iter__(self) -> Iterator[PluginInfo]:
        return iter(self.plugins)

    def __len__(self) -> int:
        return len(self.plugins)

    @property
    def names(self) -> List[str]:
        return [p.name for p in self.plugins]

    def to_frame(self) -> Any:
        """One row per configuration key of every plugin."""
        import pandas as pd
        rows = [{"plugin": p.name, "kind": p.kind, "version": p.version, "key": k.name, "type": k.type,
                 "default": k.default, "required": k.required, "help": k.help}
                for p in self.plugins for k in p.config]
        return pd.DataFrame(rows, columns=["plugin", "kind", "version", "key", "type", "default", "required", "help"])


def describe_plugins(dir: Union[str, os.PathLike, None] = None) -> PluginCatalog:
    """Loads the plugins in ``dir`` (default: :func:`default_plugin_dir`) and describes them:
    name, kind, version, description and every config key with its type, default and help."""
    if dir is None:
        dir = default_plugin_dir()
    doc = json.loads(_native.describe_plugins(None if dir is None else os.fspath(dir)))
    plugins = []
    for p in doc.get("plugins", []):
        keys = [ConfigKey(name=k.get("name", ""), type=k.get("type", ""), default=k.get("default"),
                          required="default" not in k, help=k.get("help", ""))
                for k in p.get("config", [])]
        plugins.append(PluginInfo(name=p.get("name", ""), kind=p.get("kind", ""), version=p.get("version", ""),
                                  description=p.get("description", ""), config=keys, raw=p))
    return PluginCatalog(dir=doc.get("dir", "" if dir is None else os.fspath(dir)), plugins=plugins,
                         rejected=doc.get("rejected", []))


class Pipeline:
    """consume -> decode -> plugin stages -> output topics, on the library's own threads.

    Args:
        config: the pipeline document as a dict (keys: kafka, input, decoder, stages, rules,
            outputs, plugins, commit_interval_ms, producer, consumer; see docs/pipeline.md).
            Unknown keys are refused with a ConfigError naming them.
        bootstrap: "host:port" or a :class:`Broker`; sets ``kafka["bootstrap.servers"]``.
        window: shorthand for the window stage config, e.g. ``{"size_s": 2, "grace_s": 1}``.
        guarantee: ``processing.guarantee``: ``"at_least_once"`` (default) or ``"exactly_once"``
            (each commit epoch's outputs and offsets in one Kafka transaction; docs/pipeline.md).

    Without ``stages`` the core's default runs: anomaly rules, per-sensor aggregates and
    5-minute tumbling windows. Context manager: leaving the block stops the pipeline (closing
    open windows) and frees it. :meth:`stop` leaves open windows to the next owner (resumable),
    unless asked or configured (``stop.close_windows``; true by default with an in-process
    :class:`Broker`) to close them.

    >>> with broker.pipeline(window={"size_s": 2, "grace_s": 1}) as p:
    ...     p.run_bounded()
    ...     windows = p.windows()
    """

    def __init__(self, config: Optional[Mapping[str, Any]] = None, *,
                 bootstrap: Optional[BootstrapLike] = None,
                 window: Optional[Mapping[str, Any]] = None,
                 guarantee: Optional[str] = None) -> None:
        doc: Dict[str, Any] = copy.deepcopy(dict(config or {}))
        if guarantee is not None:  # processing.guarantee: "at_least_once" (default) or "exactly_once"
            processing = doc.setdefault("processing", {})
            if not isinstance(processing, dict):
                raise InvalidArgumentError("pipeline config: key 'processing' must be an object")
            processing["guarantee"] = guarantee
        if bootstrap is not None:
            kafka = doc.setdefault("kafka", {})
            if not isinstance(kafka, dict):
                raise InvalidArgumentError("pipeline config: key 'kafka' must be an object")
            kafka["bootstrap.servers"] = bootstrap_servers(bootstrap)
            # A broker in this process dies with it: nobody could complete windows left open,
            # so stopping closes them unless the document says otherwise (docs/pipeline.md).
            if not isinstance(bootstrap, str) and isinstance(doc.get("stop", {}), dict):
                doc.setdefault("stop", {}).setdefault("close_windows", True)
        plugin_dir = default_plugin_dir()
        if plugin_dir is not None and isinstance(doc.get("plugins", {}), dict) and "dir" not in doc.get("plugins", {}):
            doc.setdefault("plugins", {})["dir"] = plugin_dir
        if window is not None:
            stages = doc.setdefault("stages", defaults()["stages"])
            stage = next((s for s in stages if isinstance(s, dict) and s.get("plugin") == "window"), None)
            if stage is None:
                raise InvalidArgumentError("window= given but the stages have no 'window' plugin")
            stage.setdefault("config", {}).update(window)
        self.config: Dict[str, Any] = doc
        self._running = False
        self._native = _native.Pipeline(json.dumps(doc))

    # -- running ---------------------------------------------------------------------------

    def start(self) -> None:
        """Starts the pipeline's threads and returns at once."""
        self._native.start()
        self._running = True

    def stop(self, close_windows: Optional[bool] = None, timeout: float = 60.0) -> None:
        """Stops consuming, flushes outputs, commits and leaves the group. Blocking.
        ``close_windows=False`` is a resumable stop: open windows are left to the partitions'
        next owner. ``True`` closes and emits them first (bounded work, a broker that dies with
        this process). ``None`` follows the document's ``stop.close_windows`` (default False)."""
        try:
            self._native.stop(close_windows, ms(timeout))
        finally:
            self._running = False

    def run(self, duration: float, close_windows: Optional[bool] = None) -> Dict[str, Any]:
        """Runs for ``duration`` seconds, then stops; returns :meth:`stats`. Ctrl-C stops early
        (still gracefully) and re-raises KeyboardInterrupt."""
        self.start()
        try:
            deadline = time.monotonic() + duration
            while (left := deadline - time.monotonic()) > 0:
                time.sleep(min(left, 0.1))
                if self.stats().get("failed"):
                    break
        finally:
            self.stop(close_windows)
        return self.stats()

    def run_bounded(self, timeout: Optional[float] = 60.0) -> Dict[str, Any]:
        """Replays the input from its start position to the end offsets present now, closes all
        windows, flushes outputs, commits and returns :meth:`stats`. Ctrl-C returns control at
        once; the run then finishes in the background before the pipeline can be used again."""
        self._native.run_bounded(ms(timeout))
        return self.stats()

    @property
    def running(self) -> bool:
        return self._running

    # -- metrics ---------------------------------------------------------------------------

    def stats(self) -> Dict[str, Any]:
        """Counters and state: consumed, decoded, alerts, emitted per output, dead_lettered (by
        reason), outputs sent/delivered/failed, commits, rules, failed/error, elapsed_s, ..."""
        return json.loads(self._native.stats_json())

    def metrics(self) -> str:
        """The same counters in the Prometheus text exposition format 0.0.4 (what
        ``iotstream-host`` serves at ``GET /metrics``; see docs/metrics.md)."""
        return self._native.metrics()

    def counters(self) -> Dict[str, Union[int, float]]:
        """:meth:`stats` flattened to numbers only, e.g. ``{"emitted.windows": 12, ...}``."""
        return {k: v for k, v in flatten(self.stats()).items()
                if isinstance(v, (int, float)) and not isinstance(v, bool)}

    # -- results ---------------------------------------------------------------------------

    @property
    def bootstrap(self) -> str:
        servers = self.config.get("kafka", {}).get("bootstrap.servers") or self.config.get("kafka.bootstrap.servers")
        if not servers:
            raise InvalidArgumentError("the pipeline config names no kafka bootstrap.servers")
        return servers

    def output_topic(self, output: str) -> str:
        """The topic an output ("windows", "aggregates", "alerts", "dlq", ...) is written to."""
        return self.config.get("outputs", {}).get(output, TOPICS.get(output, output))

    def _read_outputs(self, outputs: Sequence[str], timeout: float) -> Dict[str, Any]:
        """{output: decoded columns}: each output topic read in C++ from its first offset to the
        end offsets it has now, without a consumer group (TimedOutError if that takes longer
        than ``timeout``)."""
        topics = {o: self.output_topic(o) for o in outputs}
        kafka = json.dumps({"bootstrap.servers": self.bootstrap})
        columns = _native.read_topics(kafka, list(dict.fromkeys(topics.values())), ms(timeout))
        return {o: columns[t] for o, t in topics.items()}

    def read_output(self, output: str, timeout: float = 30.0, idle: float = 1.0) -> Any:
        """Everything an output topic holds now, as a DataFrame (read from its first offset to
        its end offsets, decoded into columns in C++). ``idle`` is no longer used: the read ends
        at the end offsets, not after a silence."""
        return columns_to_frame(self._read_outputs([output], timeout)[output])

    def windows(self, timeout: float = 30.0) -> Any:
        """Window results as a DataFrame: sensor_id, window_start/window_end (UTC datetimes),
        sample_count, temperature.min/max/avg/std, humidity.*, pressure.*, anomalies (list)."""
        return _typed_windows(self._read_outputs(["windows"], timeout)["windows"])

    def aggregates(self, timeout: float = 30.0) -> Any:
        """Per-sensor aggregates (the seed's analytics results) as a DataFrame."""
        return _typed_aggregates(self._read_outputs(["aggregates"], timeout)["aggregates"])

    def alerts(self, timeout: float = 30.0) -> Any:
        """Alerts as a DataFrame: sensor_id, rule, value, event_time (UTC datetime), plugin."""
        return _typed_alerts(self._read_outputs(["alerts"], timeout)["alerts"])

    def results(self, timeout: float = 30.0) -> "Results":
        """Windows, aggregates and alerts in one pass over the three output topics, each as
        :meth:`windows` etc. return it. The topics are read in C++ from their first offsets to
        the end offsets they have now (no consumer group, no wait for silence) and decoded
        straight into columns; the DataFrames are built from those columns."""
        columns = self._read_outputs(("windows", "aggregates", "alerts"), timeout)
        return Results(_typed_windows(columns["windows"]), _typed_aggregates(columns["aggregates"]),
                       _typed_alerts(columns["alerts"]))

    def dead_letters(self, timeout: float = 30.0) -> Any:
        """The dead-letter topic as a DataFrame."""
        return self.read_output("dlq", timeout)

    # -- lifetime --------------------------------------------------------------------------

    @property
    def closed(self) -> bool:
        return self._native.closed

    def close(self) -> None:
        """Stops (without closing windows) if running, and frees the pipeline. Idempotent."""
        self._running = False
        self._native.close()

    def __enter__(self) -> "Pipeline":
        return self

    def __exit__(self, *exc: Any) -> None:
        try:
            if self._running and not self.closed:
                self.stop(close_windows=True)
        finally:
            self.close()

    def __repr__(self) -> str:
        stages = [s.get("plugin") for s in self.config.get("stages", defaults()["stages"])]
        state = "closed" if self.closed else ("running" if self._running else "idle")
        return f"<iotstream.Pipeline {' -> '.join(map(str, stages))} {state}>"


class Results(NamedTuple):
    """A pipeline's outputs as DataFrames."""
    windows: Any
    aggregates: Any
    alerts: Any


def _typed_windows(columns: Any) -> Any:
    return columns_to_frame(columns, epoch_s_columns=("window_start", "window_end"))


def _typed_aggregates(columns: Any) -> Any:
    return columns_to_frame(columns, time_columns=("timestamp", "latest_timestamp", "processed_at"))


def _typed_alerts(columns: Any) -> Any:
    return columns_to_frame(columns, time_columns=("event_time",), epoch_ms_columns=("detected_at_ms",))


class LoadGenerator:
    """The seed's HighThroughputProducer: synthetic sensor readings at a target rate.

    Args:
        bootstrap: "host:port" or a :class:`Broker`.
        rate: readings per second (0: as fast as possible).
        duration: seconds to run and/or ``count``: readings to send (whichever comes first).
        sensors, threads, anomaly_share, seed, topic: as the core's load generator.
        producer: extra producer config (e.g. ``{"kafka": {"linger.ms": 20}}``).
    """

    def __init__(self, bootstrap: BootstrapLike, *, rate: float = 0, duration: Optional[float] = None,
                 count: Optional[int] = None, sensors: int = 100000, threads: int = 2,
                 anomaly_share: float = 0.01, seed: int = 1, topic: str = TOPICS["readings"],
                 producer: Optional[Mapping[str, Any]] = None) -> None:
        if duration is None and count is None:
            raise InvalidArgumentError("give duration (seconds) and/or count (readings)")
        prod: Dict[str, Any] = copy.deepcopy(dict(producer or {}))
        prod.setdefault("kafka", {})["bootstrap.servers"] = bootstrap_servers(bootstrap)
        config: Dict[str, Any] = {"rate": rate, "sensors": sensors, "threads": threads,
                                  "anomaly_share": anomaly_share, "seed": seed, "topic": topic, "producer": prod}
        if duration is not None:
            config["duration_s"] = duration
        if count is not None:
            config["count"] = count
        self._native = _native.LoadGenerator(json.dumps(config))

    def start(self) -> None:
        """Starts generating on the generator's own threads; returns at once."""
        self._native.start()

    def wait(self, timeout: Optional[float] = None) -> bool:
        """Waits for the run to end; False if ``timeout`` passed first. Ctrl-C interrupts."""
        return self._native.wait(ms(timeout))

    def run(self, timeout: Optional[float] = None) -> Dict[str, Any]:
        """start() + wait(); returns :meth:`stats`."""
        self.start()
        self.wait(timeout)
        return self.stats()

    def stop(self) -> None:
        """Asks the run to stop early; returns at once."""
        self._native.stop()

    def stats(self) -> Dict[str, Any]:
        """sent, delivered, failed, anomalous, elapsed_s, achieved_rate."""
        return self._native.stats()

    @property
    def closed(self) -> bool:
        return self._native.closed

    def close(self) -> None:
        """Stops, flushes the producer and frees the generator. Idempotent."""
        self._native.close()

    def __enter__(self) -> "LoadGenerator":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
