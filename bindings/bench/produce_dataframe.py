#!/usr/bin/python3
"""Benchmark (not a test): producing a DataFrame of readings into Kafka.

Compares, on the same embedded broker and with the same producer settings:

  iotstream        Producer.send_frame(frame): columns become the seed's JSON envelope in C++,
                   sent without the GIL;
  confluent-kafka  the usual Python loop: per row, build the envelope dict, json.dumps it and
                   Producer.produce() it (Debian's python3-confluent-kafka, same librdkafka).

Both send identical envelopes {"sensor_id", "timestamp", "data", "message_id"} keyed by sensor
id, and the clock stops when every message is acknowledged (flush).

    PYTHONPATH=build/python /usr/bin/python3 bindings/bench/produce_dataframe.py [--rows 1000000]
"""
import argparse
import json
import sys
import time
import uuid

import numpy as np
import pandas as pd

import iotstream

# The iotstream producer's defaults (the seed's producer), given to both clients explicitly.
KAFKA = {"linger.ms": 10, "compression.type": "snappy", "acks": 1, "retries": 3,
         "max.in.flight.requests.per.connection": 5, "queue.buffering.max.kbytes": 32768,
         "batch.size": 16384}


def make_frame(rows: int, sensors: int) -> pd.DataFrame:
    rng = np.random.default_rng(1)
    start = np.datetime64("2024-01-01T00:00:00", "ms")
    return pd.DataFrame({
        "sensor_id": pd.Series([f"sensor_{i}" for i in range(sensors)]).iloc[rng.integers(0, sensors, rows)].to_numpy(),
        "timestamp": start + np.arange(rows).astype("timedelta64[ms]"),
        "temperature": rng.uniform(15, 35, rows).round(2),
        "humidity": rng.uniform(30, 80, rows).round(2),
        "pressure": rng.uniform(990, 1030, rows).round(2),
        "battery_level": rng.uniform(10, 100, rows).round(1),
        "location.lat": rng.uniform(37, 38, rows).round(6),
        "location.lon": rng.uniform(-122.5, -121.5, rows).round(6),
    })


def bench_iotstream(broker: iotstream.Broker, topic: str, frame: pd.DataFrame) -> dict:
    producer = iotstream.Producer(broker, topic=topic, kafka=KAFKA)
    started = time.perf_counter()
    sent = producer.send_frame(frame)
    enqueued = time.perf_counter()
    producer.flush(timeout=600)
    done = time.perf_counter()
    stats = producer.stats()
    producer.close()
    assert sent == len(frame) and stats.delivered == len(frame), stats
    return {"enqueue_s": enqueued - started, "total_s": done - started, "bytes": stats.bytes}


def bench_confluent(bootstrap: str, topic: str, frame: pd.DataFrame) -> dict:
    from confluent_kafka import Producer

    producer = Producer({"bootstrap.servers": bootstrap, **KAFKA})
    failures = 0

    def on_delivery(err, msg):
        nonlocal failures
        if err is not None:
            failures += 1

    ids = frame["sensor_id"].tolist()
    # ISO-8601 text with milliseconds, as iotstream writes; converting the column up front
    # favours confluent-kafka (it is not part of the timed loop).
    stamps = frame["timestamp"].dt.strftime("%Y-%m-%dT%H:%M:%S.%f").str[:-3].add("Z").tolist()
    columns = [frame[c].tolist() for c in ("temperature", "humidity", "pressure", "battery_level",
                                           "location.lat", "location.lon")]
    started = time.perf_counter()
    for i, (sensor, stamp, t, h, p, b, lat, lon) in enumerate(zip(ids, stamps, *columns)):
        value = json.dumps({"sensor_id": sensor, "timestamp": stamp,
                            "data": {"temperature": t, "humidity": h, "pressure": p, "battery_level": b,
                                     "location": {"lat": lat, "lon": lon}},
                            "message_id": str(uuid.uuid4())})
        while True:
            try:
                producer.produce(topic, value, key=sensor, on_delivery=on_delivery)
                break
            except BufferError:
                producer.poll(0.05)  # queue full: serve delivery reports, then retry
        if i % 1000 == 0:
            producer.poll(0)
    enqueued = time.perf_counter()
    remaining = producer.flush(600)
    done = time.perf_counter()
    assert remaining == 0 and failures == 0, (remaining, failures)
    return {"enqueue_s": enqueued - started, "total_s": done - started}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--sensors", type=int, default=10_000)
    parser.add_argument("--partitions", type=int, default=8)
    parser.add_argument("--skip-confluent", action="store_true")
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args()

    frame = make_frame(args.rows, args.sensors)
    print(f"{args.rows:,} readings, {args.sensors:,} sensors, {args.partitions} partitions, "
          f"librdkafka settings {KAFKA}")
    results = {}
    with iotstream.Broker({"bench-iotstream": args.partitions, "bench-confluent": args.partitions}) as broker:
        results["iotstream send_frame"] = bench_iotstream(broker, "bench-iotstream", frame)
        if not args.skip_confluent:
            results["confluent-kafka loop"] = bench_confluent(broker.bootstrap, "bench-confluent", frame)

    print(f"\n{'client':<24} {'enqueue s':>10} {'total s':>9} {'records/s':>12}")
    for name, r in results.items():
        r["records_per_s"] = args.rows / r["total_s"]
        print(f"{name:<24} {r['enqueue_s']:>10.2f} {r['total_s']:>9.2f} {r['records_per_s']:>12,.0f}")
    if len(results) == 2:
        a, b = results.values()
        print(f"\niotstream is {a['records_per_s'] / b['records_per_s']:.1f}x the per-message Python loop")
    if args.json:
        with open(args.json, "w") as out:
            json.dump({"rows": args.rows, "sensors": args.sensors, "partitions": args.partitions,
                       "results": results}, out, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
