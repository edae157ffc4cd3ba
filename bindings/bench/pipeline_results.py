#!/usr/bin/python3
"""Benchmark (not a test): reading a pipeline's results into pandas (issue 16).

A bounded run over 120,000 readings (2,000 sensors x 60 readings in one 60 s window, 1 reading
in 8 too hot: ~15,000 alerts) with the default stages (anomaly, aggregate, window), then:

  results()       Pipeline.results(): windows, aggregates and alerts as DataFrames;
  read_frame      Consumer.read_frame() of the alerts topic and of the readings topic (a fresh
                  consumer group each: its join is part of the time; the time after the first
                  batch arrived is printed beside it).

Each read is repeated (--repeat, default 2) on the same broker; the box is a noisy shared VM.

    PYTHONPATH=build/python /usr/bin/python3 bindings/bench/pipeline_results.py [--repeat 3]
"""
import argparse
import json
import time

import numpy as np
import pandas as pd

import iotstream

T0 = 1_700_000_040_000  # a multiple of 60 s


def make_frame(sensors: int, per_sensor: int, hot_share: float) -> pd.DataFrame:
    rng = np.random.default_rng(1)
    rows = sensors * per_sensor
    temperature = rng.uniform(15, 35, rows).round(2)
    temperature[rng.random(rows) < hot_share] = 45.0  # temperature_out_of_range
    return pd.DataFrame({
        "sensor_id": [f"sensor_{i % sensors}" for i in range(rows)],
        "timestamp": T0 + (np.arange(rows) // sensors) * (59_000 // per_sensor),
        "temperature": temperature,
        "humidity": rng.uniform(30, 80, rows).round(2),
        "pressure": rng.uniform(990, 1030, rows).round(2),
        "battery_level": rng.uniform(20, 100, rows).round(1),
    })


def timed(fn):
    started = time.perf_counter()
    value = fn()
    return time.perf_counter() - started, value


def timed_read_frame(consumer):
    """(seconds in read_frame, seconds of it after the first batch arrived, frame). The part
    before the first batch is the consumer group's join (on the embedded broker a new group
    waits the broker's initial rebalance delay, 3 s, before assigning)."""
    first = []
    poll = consumer.poll

    def timed_poll(*args, **kwargs):
        batch = poll(*args, **kwargs)
        if len(batch) and not first:
            first.append(time.perf_counter())
        return batch

    consumer.poll = timed_poll
    started = time.perf_counter()
    frame = consumer.read_frame()
    ended = time.perf_counter()
    return ended - started, ended - (first[0] if first else ended), frame


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sensors", type=int, default=2000)
    parser.add_argument("--per-sensor", type=int, default=60)
    parser.add_argument("--hot-share", type=float, default=0.125)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args()

    frame = make_frame(args.sensors, args.per_sensor, args.hot_share)
    out = {"readings": len(frame), "runs": []}
    with iotstream.Broker() as broker:
        with broker.producer(kafka={"compression.type": "lz4"}) as producer:
            producer.send_frame(frame)
            producer.flush(600)
        with broker.pipeline(window={"size_s": 60, "grace_s": 5}) as pipeline:
            stats = pipeline.run_bounded(timeout=600)
            out["windows"] = stats["emitted"]["windows"]
            out["alerts"] = stats["alerts"]
            out["aggregates"] = stats["emitted"].get("aggregates")
            print(f"{len(frame):,} readings -> {out['windows']:,} windows, {out['alerts']:,} alerts, "
                  f"{out['aggregates']:,} aggregates (bounded run {stats.get('elapsed_s', 0):.1f} s)")
            for i in range(args.repeat):
                run = {}
                run["results_s"], results = timed(pipeline.results)
                assert len(results.windows) == out["windows"], (len(results.windows), out["windows"])
                assert len(results.alerts) == out["alerts"], (len(results.alerts), out["alerts"])
                with broker.consumer(iotstream.TOPICS["alerts"]) as consumer:
                    run["read_frame_alerts_s"], run["read_frame_alerts_after_join_s"], alerts = timed_read_frame(consumer)
                assert len(alerts) == out["alerts"]
                with broker.consumer(iotstream.TOPICS["readings"]) as consumer:
                    run["read_frame_readings_s"], run["read_frame_readings_after_join_s"], readings = \
                        timed_read_frame(consumer)
                assert len(readings) == len(frame)
                out["runs"].append(run)
                print(f"run {i + 1}: results() {run['results_s']:.3f} s; "
                      f"read_frame(alerts, {len(alerts):,}) {run['read_frame_alerts_s']:.3f} s "
                      f"({run['read_frame_alerts_after_join_s']:.3f} s after the first batch); "
                      f"read_frame(readings, {len(readings):,}) {run['read_frame_readings_s']:.3f} s "
                      f"({run['read_frame_readings_after_join_s']:.3f} s after the first batch)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
