#!/usr/bin/python3
"""The iotstream benchmark driver (scripts/bench.sh runs it; ctest runs it as bench.smoke).

One run, one embedded broker (iotstream-broker), one generated data set (the seed's readings,
~250-byte envelopes, 100K sensors), four ways each for:
  producer  iotstream (iots_producer_send / _send_batch / load generator), raw librdkafka
            producev (the ceiling), the seed's kafka-python producer, confluent-kafka;
  pipeline  iotstream (iots_pipeline_run_bounded), raw librdkafka consume only (the ceiling),
            the seed's consumer + analytics + window + anomaly handlers, confluent-kafka + json
            doing the same aggregation;
plus event-to-alert latency at a sustained rate and resident bytes per open sensor-window.
Writes OUT/results.md, OUT/results.json and OUT/results.png. Exits non-zero when a path broke
or lost records; it never judges speed.

Python paths run in child processes of this script (--worker NAME), C++ paths in
iotstream-bench; every child prints its result as one JSON line last.
"""
import argparse
import json
import math
import os
import random
import subprocess
import sys
import threading
import time
import uuid
from datetime import datetime, timezone

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE_DIR = os.path.dirname(os.path.dirname(HERE))

# Record counts. Fast paths get more records so each run lasts seconds, not milliseconds.
MODES = {
    'full': dict(data=200_000, sensors=100_000, produce_native=2_000_000, produce_seed=100_000,
                 produce_confluent=500_000, pipe_native=2_000_000, pipe_partitions=64,
                 pipe_seed=200_000, pipe_confluent=1_000_000, latency_rate=100_000,
                 latency_duration=15, memory_records=200_000, memory_sensors=100_000,
                 memory_small_sensors=1_000, memory_huge_sensors=1_000_000),
    'short': dict(data=5_000, sensors=5_000, produce_native=20_000, produce_seed=2_000,
                  produce_confluent=5_000, pipe_native=20_000, pipe_partitions=8,
                  pipe_seed=3_000, pipe_confluent=10_000, latency_rate=20_000,
                  latency_duration=3, memory_records=10_000, memory_sensors=5_000,
                  memory_small_sensors=500, memory_huge_sensors=10_000),
}
OUTPUT_KINDS = ('windows', 'aggregates', 'alerts', 'dlq')
ANOMALY_SHARE = 0.01


def cpu_now():
    """User + system CPU seconds of this process (every thread: librdkafka's too)."""
    import resource
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def log(message):
    print(f'[bench {time.strftime("%H:%M:%S")}] {message}', file=sys.stderr, flush=True)


# ---- data ---------------------------------------------------------------------------------

def seed_reading(rng, anomalous):
    """The seed's _generate_sensor_data ranges; anomalies as iotstream's load generator makes them
    (battery is drawn from 15..100 so that anomalies come only from the anomaly share)."""
    t, h = rng.uniform(20.0, 35.0), rng.uniform(30.0, 80.0)
    p, b = rng.uniform(1000.0, 1020.0), rng.uniform(15.0, 100.0)
    if anomalous:
        kind = rng.randrange(5)
        if kind == 0: t = rng.uniform(40.5, 50.0)
        elif kind == 1: t = rng.uniform(-10.0, -0.5)
        elif kind == 2: h = rng.uniform(95.5, 100.0)
        elif kind == 3: h = rng.uniform(0.0, 4.5)
        else: b = rng.uniform(0.0, 9.5)
    return {'temperature': round(t, 2), 'humidity': round(h, 2), 'pressure': round(p, 2),
            'battery_level': round(b, 1),
            'location': {'lat': round(rng.uniform(37.0, 38.0), 6),
                         'lon': round(rng.uniform(-122.0, -121.0), 6)}}


def make_data(path, count, sensors, base_us, step_us, seed=1):
    """Writes `count` records, one per line: sensor_id TAB data_json TAB envelope (the seed's
    envelope: sensor_id, ISO-8601 timestamp, data, message_id). Returns the mean envelope size."""
    rng = random.Random(seed)
    total = 0
    with open(path, 'w') as out:
        for i in range(count):
            sensor_id = f'sensor_{i % sensors}'
            data = json.dumps(seed_reading(rng, rng.random() < ANOMALY_SHARE), separators=(',', ':'))
            stamp = datetime.fromtimestamp((base_us + i * step_us) / 1e6, timezone.utc)
            envelope = ('{"sensor_id":"%s","timestamp":"%s","data":%s,"message_id":"%s"}'
                        % (sensor_id, stamp.strftime('%Y-%m-%dT%H:%M:%S.%fZ'), data, uuid.UUID(int=rng.getrandbits(128), version=4)))
            total += len(envelope)
            out.write(f'{sensor_id}\t{data}\t{envelope}\n')
    return total / count


def load_data(path):
    with open(path) as f:
        return [line.rstrip('\n').split('\t', 2) for line in f]


# ---- workers: the Python paths, each in its own process -----------------------------------

def worker_seed_produce(a):
    import seed_pipeline
    records = [(sid, json.loads(data)) for sid, data, _ in load_data(a.data)]
    delivered = [0]

    class CountingProducer(seed_pipeline.IoTDataProducer):
        def _on_send_success(self, record_metadata):
            delivered[0] += 1
            super()._on_send_success(record_metadata)

    producer = CountingProducer(a.bootstrap, a.topic)
    real_stdout, sys.stdout = sys.stdout, open(os.devnull, 'w')  # the seed prints per message
    try:
        start, cpu_start = time.perf_counter(), cpu_now()
        sent = 0
        for i in range(a.count):
            sid, data = records[i % len(records)]
            sent += producer.send_sensor_data(sid, data)
        producer.close()
        elapsed, cpu = time.perf_counter() - start, cpu_now() - cpu_start
    finally:
        sys.stdout = real_stdout
    return {'records': sent, 'elapsed_s': elapsed, 'cpu_s': cpu, 'delivered': delivered[0],
            'failed': sent - delivered[0]}


def worker_confluent_produce(a):
    from confluent_kafka import Producer
    records = [(sid.encode(), env.encode()) for sid, _, env in load_data(a.data)]
    producer = Producer({'bootstrap.servers': a.bootstrap, 'linger.ms': 10, 'compression.type': 'snappy',
                         'acks': 1, 'retries': 3, 'batch.size': 16384, 'max.in.flight.requests.per.connection': 5,
                         'queue.buffering.max.kbytes': 32768, 'queue.buffering.max.messages': 1000000})
    counts = {'delivered': 0, 'failed': 0}

    def on_delivery(err, _msg):
        counts['failed' if err else 'delivered'] += 1

    bytes_sent = 0
    start, cpu_start = time.perf_counter(), cpu_now()
    for i in range(a.count):
        key, value = records[i % len(records)]
        while True:
            try:
                producer.produce(a.topic, value, key, on_delivery=on_delivery)
                break
            except BufferError:
                producer.poll(0.01)
        producer.poll(0)
        bytes_sent += len(value)
    remaining = producer.flush(300)
    elapsed, cpu = time.perf_counter() - start, cpu_now() - cpu_start
    return {'records': a.count, 'bytes': bytes_sent, 'elapsed_s': elapsed, 'cpu_s': cpu, 'unflushed': remaining,
            **counts}


def worker_seed_pipeline(a):
    """The seed's IoTDataConsumer driving both of its handlers (RealTimeAnalyticsConsumer's
    analytics and StreamProcessor's windows + anomalies): one pass, as iotstream's pipeline."""
    import seed_pipeline
    consumer = seed_pipeline.IoTDataConsumer(a.bootstrap, a.topic, a.group, auto_offset_reset='earliest')
    analytics = seed_pipeline.RealTimeAnalyticsConsumer(a.bootstrap, a.topic)
    processor = seed_pipeline.StreamProcessor(a.bootstrap, a.topic, a.output_topic)
    state = {'count': 0, 'bytes': 0, 'first': None, 'last_progress': time.monotonic()}

    def handler(messages):
        if state['first'] is None:
            state['first'] = time.perf_counter()
        analytics._analytics_message_handler(messages)
        processor._stream_processor_handler(messages)
        state['count'] += len(messages)
        state['last_progress'] = time.monotonic()
        if state['count'] >= a.count:
            consumer.stop_consuming()

    def watchdog():  # records that never come (lost) must not hang the run
        while consumer.running or state['first'] is None:
            if time.monotonic() - state['last_progress'] > a.idle_timeout:
                consumer.stop_consuming()
                return
            time.sleep(0.5)

    real_stdout, sys.stdout = sys.stdout, open(os.devnull, 'w')  # the seed prints per result
    cpu_start = cpu_now()  # includes the group join (idle)
    try:
        consumer.running = True
        threading.Thread(target=watchdog, daemon=True).start()
        consumer.start_consuming(handler)
        processor.producer.close()  # its window results, delivered
        end, cpu = time.perf_counter(), cpu_now() - cpu_start
    finally:
        sys.stdout = real_stdout
    elapsed = end - state['first'] if state['first'] else 0.0
    return {'records': state['count'], 'elapsed_s': elapsed, 'cpu_s': cpu, 'expected': a.count,
            'errors': analytics.metrics['processing_errors']}


def worker_confluent_pipeline(a):
    """confluent-kafka + json: the same work as iotstream's stages: anomaly rules (an alert per
    anomalous reading), per-sensor interval aggregates every 5 s, 5-minute event-time windows
    with min/max/avg/std per field, all emitted to topics, offsets committed every second."""
    from confluent_kafka import Consumer, KafkaError, KafkaException, Producer
    consumer = Consumer({'bootstrap.servers': a.bootstrap, 'group.id': a.group, 'auto.offset.reset': 'earliest',
                         'enable.auto.commit': False, 'queued.min.messages': 200000,
                         'queued.max.messages.kbytes': 262144})
    producer = Producer({'bootstrap.servers': a.bootstrap, 'linger.ms': 5, 'compression.type': 'lz4',
                         'queue.buffering.max.messages': 1000000})
    consumer.subscribe([a.topic])
    cpu_start = cpu_now()  # includes the group join (idle)
    prefix = a.output_topic
    window_ms = 300_000
    aggregates, windows = {}, {}
    count = nbytes = 0
    first = None
    last_commit = last_aggregate = last_progress = time.monotonic()
    fields = ('temperature', 'humidity', 'pressure')

    def produce(topic, key, value):
        while True:
            try:
                producer.produce(topic, value, key)
                return
            except BufferError:
                producer.poll(0.01)

    def emit_aggregates():
        for sid, (n, t, h, p) in aggregates.items():
            produce(prefix + '-aggregates', sid, json.dumps({'sensor_id': sid, 'avg_temperature': t / n,
                                                             'avg_humidity': h / n, 'avg_pressure': p / n,
                                                             'sample_count': n}))
        aggregates.clear()

    while count < a.count:
        # Never past a.count: the topic may hold more (the smoke run reads 10K of 20K).
        messages = consumer.consume(num_messages=min(10000, a.count - count), timeout=0.5)
        now = time.monotonic()
        if not messages:
            if now - last_progress > a.idle_timeout:
                break
            continue
        if first is None:
            first = time.perf_counter()
        last_progress = now
        for m in messages:
            if m.error():
                continue
            value = m.value()
            nbytes += len(value)
            reading = json.loads(value)
            sid, d = reading['sensor_id'], reading['data']
            t, h, p, b = d['temperature'], d['humidity'], d['pressure'], d['battery_level']
            event_ms = int(datetime.fromisoformat(reading['timestamp'].replace('Z', '+00:00')).timestamp() * 1000)
            anomalies = []
            if t > 40 or t < 0: anomalies.append(('temperature_out_of_range', t))
            if h > 95 or h < 5: anomalies.append(('humidity_out_of_range', h))
            if b < 10: anomalies.append(('low_battery', b))
            for rule, v in anomalies:
                produce(prefix + '-alerts', sid, json.dumps({'sensor_id': sid, 'rule': rule, 'value': v,
                                                             'event_time_ms': event_ms}))
            agg = aggregates.get(sid)
            if agg is None:
                aggregates[sid] = [1, t, h, p]
            else:
                agg[0] += 1; agg[1] += t; agg[2] += h; agg[3] += p
            key = (sid, event_ms - event_ms % window_ms)
            w = windows.get(key)
            if w is None:  # n, then per field min, max, sum, sum of squares; then anomaly names
                windows[key] = [1, t, t, t, t * t, h, h, h, h * h, p, p, p, p * p, {r for r, _ in anomalies}]
            else:
                w[0] += 1
                for base, v in ((1, t), (5, h), (9, p)):
                    if v < w[base]: w[base] = v
                    if v > w[base + 1]: w[base + 1] = v
                    w[base + 2] += v; w[base + 3] += v * v
                for r, _ in anomalies:
                    w[13].add(r)
        count += len(messages)
        producer.poll(0)
        if now - last_aggregate >= 5:
            emit_aggregates()
            last_aggregate = now
        if now - last_commit >= 1:
            consumer.commit(asynchronous=False)  # a batch was just consumed: there is an offset
            last_commit = now
    # End of input: close every window, flush outputs, commit (as run_bounded does).
    emit_aggregates()
    for (sid, start), w in windows.items():
        n = w[0]
        result = {'sensor_id': sid, 'window_start': start // 1000, 'window_end': (start + window_ms) // 1000,
                  'sample_count': n, 'anomalies': sorted(w[13])}
        for name, base in zip(fields, (1, 5, 9)):
            mean = w[base + 2] / n
            var = (w[base + 3] - n * mean * mean) / (n - 1) if n > 1 else 0.0
            result[name] = {'min': w[base], 'max': w[base + 1], 'avg': mean, 'std': math.sqrt(max(var, 0.0))}
        produce(prefix + '-windows', sid, json.dumps(result))
    producer.flush(300)
    try:
        consumer.commit(asynchronous=False)
    except KafkaException as e:
        if e.args[0].code() != KafkaError._NO_OFFSET:  # nothing new since the last commit
            raise
    end, cpu = time.perf_counter(), cpu_now() - cpu_start
    consumer.close()
    return {'records': count, 'bytes': nbytes, 'elapsed_s': end - first if first else 0.0, 'cpu_s': cpu,
            'expected': a.count,
            'windows': len(windows)}


WORKERS = {'seed-produce': worker_seed_produce, 'confluent-produce': worker_confluent_produce,
           'seed-pipeline': worker_seed_pipeline, 'confluent-pipeline': worker_confluent_pipeline}


def worker_main(argv):
    p = argparse.ArgumentParser()
    p.add_argument('--worker', required=True, choices=sorted(WORKERS))
    p.add_argument('--bootstrap', required=True)
    p.add_argument('--topic', required=True)
    p.add_argument('--data')
    p.add_argument('--count', type=int, required=True)
    p.add_argument('--group', default=f'bench-py-{os.getpid()}')
    p.add_argument('--output-topic', default='bench-py-out')
    p.add_argument('--idle-timeout', type=float, default=20.0)
    a = p.parse_args(argv)
    sys.path.insert(0, HERE)
    result = WORKERS[a.worker](a)
    print(json.dumps(result), flush=True)


# ---- the run ------------------------------------------------------------------------------

class PathFailed(Exception):
    pass


def run_child(cmd, timeout):
    log('$ ' + ' '.join(cmd))
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise PathFailed(f'exit {proc.returncode}: {proc.stderr.strip()[-2000:]}')
    lines = [line for line in proc.stdout.splitlines() if line.startswith('{')]
    if not lines:
        raise PathFailed(f'no result line; stderr: {proc.stderr.strip()[-2000:]}')
    return json.loads(lines[-1])


class Bench:
    def __init__(self, args):
        self.args = args
        self.mode = 'short' if args.short else 'full'
        self.n = MODES[self.mode]
        self.build = os.path.abspath(args.build_dir)
        self.out = os.path.abspath(args.out)
        os.makedirs(self.out, exist_ok=True)
        self.bench_exe = os.path.join(self.build, 'tests', 'bench', 'iotstream-bench')
        self.broker_exe = os.path.join(self.build, 'host_example', 'iotstream-broker')
        for exe in (self.bench_exe, self.broker_exe):
            if not os.access(exe, os.X_OK):
                sys.exit(f'run_bench: {exe} is missing: build the iotstream-bench target first (scripts/bench.sh does)')
        self.results = {'mode': self.mode, 'producer': [], 'pipeline': [], 'latency': None, 'memory': None,
                        'failures': [], 'notes': []}
        self.timeout = 300 if args.short else 900

    # -- helpers --
    def cpp(self, *args):
        return run_child([self.bench_exe, *args, '--bootstrap', self.bootstrap], self.timeout)

    def py(self, worker, *args):
        return run_child([sys.executable, os.path.abspath(__file__), '--worker', worker,
                          '--bootstrap', self.bootstrap, *args], self.timeout)

    def record(self, section, name, peer, fn, bytes_per_record=None, expected=None):
        try:
            r = fn()
        except (PathFailed, subprocess.TimeoutExpired) as e:
            log(f'{name}: FAILED: {e}')
            self.results['failures'].append(f'{section} / {name}: {e}')
            self.results[section].append({'name': name, 'peer': peer, 'error': str(e)})
            return None
        records = int(r.get('records', 0))
        if 'bytes' not in r and bytes_per_record:
            r['bytes'] = records * bytes_per_record
        r['name'], r['peer'] = name, peer
        r['rate'] = records / r['elapsed_s'] if r.get('elapsed_s') else 0.0
        r['mb_s'] = r.get('bytes', 0) / r['elapsed_s'] / 1e6 if r.get('elapsed_s') else 0.0
        if 'cpu_s' in r and records:  # getrusage of the measuring process, per record
            r['cpu_us_per_record'] = r['cpu_s'] * 1e6 / records
        lost = []
        if expected is not None and records != expected:
            lost.append(f'{records} of {expected} records')
        if r.get('failed'):
            lost.append(f"{r['failed']} delivery failures")
        if section == 'producer' and 'delivered' in r and r['delivered'] != records:
            lost.append(f"{r['delivered']} of {records} delivered")
        if lost:
            r['loss'] = '; '.join(lost)
            self.results['failures'].append(f'{section} / {name}: {r["loss"]}')
        log(f'{name}: {records} records in {r.get("elapsed_s", 0):.2f} s = {r["rate"]:,.0f}/s'
            + (f', CPU {r["cpu_us_per_record"]:.2f} µs/record' if 'cpu_us_per_record' in r else '')
            + (f' LOSS: {r["loss"]}' if lost else ''))
        self.results[section].append(r)
        return r

    def start_broker(self, topics):
        cmd = [self.broker_exe, '--quiet']
        for name, partitions in topics:
            cmd += ['--topic', f'{name}:{partitions}']
        log('$ ' + ' '.join(cmd))
        self.broker = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        self.bootstrap = self.broker.stdout.readline().strip()
        if not self.bootstrap:
            sys.exit('run_bench: the broker did not start')
        log(f'broker at {self.bootstrap}')

    def stop_broker(self):
        self.broker.terminate()
        try:
            self.broker.wait(20)
        except subprocess.TimeoutExpired:
            self.broker.kill()

    def prefill(self, topic, data, count, what):
        r = self.cpp('produce', '--mode', 'rdkafka', '--topic', topic, '--data', data, '--count', str(count),
                     '--kafka', 'compression.type=lz4', '--kafka', 'linger.ms=50', '--kafka', 'batch.size=1000000')
        if r['delivered'] != count:
            raise SystemExit(f'run_bench: pre-filling {what} delivered {r["delivered"]} of {count}')

    # -- the run --
    def run(self):
        n = self.n
        data = os.path.join(self.out, 'data.tsv')
        now_us = int(time.time() * 1e6)
        log(f'{self.mode} mode: generating {n["data"]} readings for {n["sensors"]} sensors')
        envelope_size = make_data(data, n['data'], n['sensors'], now_us, 1)
        self.results['envelope_bytes'] = envelope_size
        # Memory runs: every event time in one 5-minute window, so no window closes.
        window_start_us = now_us - now_us % 300_000_000 + 1_000_000
        mem_big = os.path.join(self.out, 'memory-big.tsv')
        mem_small = os.path.join(self.out, 'memory-small.tsv')
        # The same number of records in both runs, so fetch buffers are alike and cancel out.
        make_data(mem_big, n['memory_records'], n['memory_sensors'], window_start_us, 1, seed=2)
        make_data(mem_small, n['memory_records'], n['memory_small_sensors'], window_start_us, 1, seed=3)
        # Many distinct sensors (1M in full mode), one reading each, all in one open window.
        mem_huge = os.path.join(self.out, 'memory-huge.tsv')
        if 'memory' in (self.args.only or ['memory']):
            log(f'generating {n["memory_huge_sensors"]} readings for as many sensors')
            make_data(mem_huge, n['memory_huge_sensors'], n['memory_huge_sensors'], window_start_us, 1, seed=4)

        topics = [('produce', 8), ('pipe', n['pipe_partitions']), ('pipe-seed', 8), ('lat-in', 8),
                  ('mem-big', 16), ('mem-small', 16), ('mem-huge', 64)]
        for prefix in ('out-iots', 'out-eos', 'out-seed', 'out-confluent', 'lat', 'mem-big', 'mem-small', 'mem-huge'):
            topics += [(f'{prefix}-{kind}', 8) for kind in OUTPUT_KINDS]
        self.start_broker(topics)
        try:
            only = self.args.only or ['producer', 'pipeline', 'latency', 'memory']
            self.results['skipped'] = [s for s in ('producer', 'pipeline', 'latency', 'memory') if s not in only]
            if 'producer' in only:
                self.run_producers(data, envelope_size)
            if 'pipeline' in only:
                self.run_pipelines(data)
            if 'latency' in only:
                self.run_latency()
            if 'memory' in only:
                self.run_memory(mem_big, mem_small, mem_huge)
        finally:
            self.stop_broker()
        return self.results

    def run_producers(self, data, envelope_size):
        n = self.n
        count = n['produce_native']
        common = ['--topic', 'produce', '--data', data, '--count', str(count)]
        self.record('producer', 'librdkafka producev (ceiling)', 'rdkafka',
                    lambda: self.cpp('produce', '--mode', 'rdkafka', *common))
        self.record('producer', 'iotstream iots_producer_send', 'iotstream',
                    lambda: self.cpp('produce', '--mode', 'send', *common))
        self.record('producer', 'iotstream iots_producer_send_batch', 'iotstream-batch',
                    lambda: self.cpp('produce', '--mode', 'batch', *common))
        self.record('producer', 'iotstream load generator (unpaced)', 'iotstream-loadgen',
                    lambda: self.cpp('loadgen', '--topic', 'produce', '--count', str(count), '--sensors',
                                     str(n['sensors'])), bytes_per_record=envelope_size)
        self.record('producer', 'confluent-kafka per-message loop', 'confluent',
                    lambda: self.py('confluent-produce', '--topic', 'produce', '--data', data,
                                    '--count', str(n['produce_confluent'])))
        self.record('producer', 'seed IoTDataProducer (kafka-python)', 'seed',
                    lambda: self.py('seed-produce', '--topic', 'produce', '--data', data,
                                    '--count', str(n['produce_seed'])), bytes_per_record=envelope_size)

    def run_pipelines(self, data):
        n = self.n
        log(f'pre-filling topic pipe ({n["pipe_native"]} records, {n["pipe_partitions"]} partitions, lz4)')
        self.prefill('pipe', data, n['pipe_native'], 'pipe')
        log(f'pre-filling topic pipe-seed ({n["pipe_seed"]} records)')
        self.prefill('pipe-seed', data, n['pipe_seed'], 'pipe-seed')
        count = n['pipe_native']
        self.record('pipeline', 'librdkafka consume only (ceiling)', 'rdkafka',
                    lambda: self.cpp('consume-rdkafka', '--topic', 'pipe', '--count', str(count)), expected=count)
        self.record('pipeline', 'iotstream pipeline (run_bounded)', 'iotstream',
                    lambda: self.cpp('pipeline', '--topic', 'pipe', '--count', str(count), '--prefix', 'out-iots'),
                    expected=count)
        # The same run with processing.guarantee exactly_once: one transaction per commit epoch.
        self.record('pipeline', 'iotstream pipeline, exactly-once (run_bounded)', 'iotstream-eos',
                    lambda: self.cpp('pipeline', '--topic', 'pipe', '--count', str(count), '--prefix', 'out-eos',
                                     '--guarantee', 'exactly_once'),
                    expected=count)
        conf_count = min(count, n['pipe_confluent'])
        self.record('pipeline', 'confluent-kafka + json, same stages', 'confluent',
                    lambda: self.py('confluent-pipeline', '--topic', 'pipe', '--count', str(conf_count),
                                    '--output-topic', 'out-confluent'), expected=conf_count)
        self.record('pipeline', 'seed consumer + analytics + windows (kafka-python)', 'seed',
                    lambda: self.py('seed-pipeline', '--topic', 'pipe-seed', '--count', str(n['pipe_seed']),
                                    '--output-topic', 'out-seed-windows'),
                    bytes_per_record=self.results['envelope_bytes'], expected=n['pipe_seed'])

    def run_latency(self):
        n = self.n
        try:
            # The mock broker answers an empty fetch only after fetch.wait.max.ms (500 ms by default)
            # even when data arrives meanwhile; a real broker answers as soon as data is there.
            # A short wait makes the mock behave like a real broker for a caught-up consumer.
            r = self.cpp('latency', '--topic', 'lat-in', '--prefix', 'lat', '--rate', str(n['latency_rate']),
                         '--consumer-kafka', 'fetch.wait.max.ms=10',
                         '--duration', str(n['latency_duration']), '--sensors', str(n['sensors']))
        except (PathFailed, subprocess.TimeoutExpired) as e:
            self.results['failures'].append(f'latency: {e}')
            return
        self.results['latency'] = r
        log(f'latency at {r["rate_achieved"]:,.0f}/s: p50 {r["p50_ms"]} ms, p99 {r["p99_ms"]} ms, '
            f'{r["alerts_measured"]} alerts; per hop p50/p99: '
            + ', '.join(f'{k} {v["p50_ms"]}/{v["p99_ms"]}' for k, v in r.get('hops', {}).items()))
        if r['alerts_measured'] == 0:
            self.results['failures'].append('latency: no alert came back')
        if r['consumed'] < r['produced']:
            self.results['notes'].append(f'latency run: the pipeline consumed {r["consumed"]} of {r["produced"]} '
                                         'readings before it was stopped (backlog at the end)')

    def run_memory(self, mem_big, mem_small, mem_huge):
        n = self.n
        try:
            runs = {}
            for label, path, sensors in (('big', mem_big, n['memory_sensors']),
                                         ('small', mem_small, n['memory_small_sensors']),
                                         ('huge', mem_huge, n['memory_huge_sensors'])):
                count = sum(1 for _ in open(path))
                self.prefill(f'mem-{label}', path, count, f'mem-{label}')
                r = self.cpp('memory', '--topic', f'mem-{label}', '--count', str(count), '--prefix', f'mem-{label}')
                if r['records'] != count:
                    self.results['failures'].append(f'memory ({label}): consumed {r["records"]} of {count}')
                if r['windows_emitted']:
                    self.results['failures'].append(f'memory ({label}): {r["windows_emitted"]} windows closed early')
                r['sensors'] = sensors
                r['rate'] = r['records'] / r['elapsed_s'] if r.get('elapsed_s') else 0.0
                r['cpu_us_per_record'] = r['cpu_s'] * 1e6 / r['records'] if r['records'] else 0.0
                runs[label] = r
        except (PathFailed, subprocess.TimeoutExpired) as e:
            self.results['failures'].append(f'memory: {e}')
            return
        big, small = runs['big'], runs['small']
        extra_windows = big['sensors'] - small['sensors']
        delta = (big['rss_after'] - big['rss_before']) - (small['rss_after'] - small['rss_before'])
        heap_delta = (big['heap_after'] - big['heap_before']) - (small['heap_after'] - small['heap_before'])
        self.results['memory'] = {'runs': runs, 'sensor_windows': extra_windows,
                                  'bytes_per_sensor_window': delta / extra_windows,
                                  'heap_bytes_per_sensor_window': heap_delta / extra_windows,
                                  'bytes_per_100k_sensors': delta / extra_windows * 100_000}
        log(f'memory: {delta / extra_windows:.0f} B per open sensor-window')
        huge = runs['huge']
        log(f'memory, {huge["sensors"]:,} sensors: {(huge["heap_after"] - huge["heap_before"]) / huge["sensors"]:.0f} B '
            f'live heap per sensor, {huge["rate"]:,.0f} records/s, {huge["cpu_us_per_record"]:.2f} µs CPU/record')


# ---- report ---------------------------------------------------------------------------------

PEERS = [('rdkafka', 'librdkafka'), ('confluent', 'confluent-kafka'), ('seed', 'seed')]


def fmt_rate(x):
    return f'{x:,.0f}'


def section_table(rows):
    """Records/s and its ratios to each peer; CPU µs/record is user + system time of the measuring
    process (getrusage: the bench process or the Python worker, every client thread included; the
    broker runs in its own process), and its ratio to raw librdkafka's."""
    by_peer = {r['peer']: r for r in rows if 'error' not in r}
    header = ('| Path | Records | Records/s | MB/s | ' + ' | '.join(f'x {label}' for _, label in PEERS)
              + ' | CPU µs/record | CPU x librdkafka | Check |')
    lines = [header, '|' + '---|' * (7 + len(PEERS))]
    raw = by_peer.get('rdkafka')
    for r in rows:
        if 'error' in r:
            lines.append(f'| {r["name"]} | - | FAILED | - | ' + ' | '.join('-' for _ in PEERS) + ' | - | - | broken |')
            continue
        ratios = []
        for peer, _ in PEERS:
            other = by_peer.get(peer)
            ratios.append('-' if other is None or other is r or not other['rate'] else f'{r["rate"] / other["rate"]:.2f}x')
        cpu = r.get('cpu_us_per_record')
        cpu_ratio = ('-' if cpu is None or raw is None or raw is r or not raw.get('cpu_us_per_record')
                     else f'{cpu / raw["cpu_us_per_record"]:.2f}x')
        lines.append(f'| {r["name"]} | {int(r["records"]):,} | {fmt_rate(r["rate"])} | {r["mb_s"]:.1f} | '
                     + ' | '.join(ratios) + f' | {"-" if cpu is None else f"{cpu:.2f}"} | {cpu_ratio} | '
                     + f'{"LOSS: " + r["loss"] if r.get("loss") else "ok"} |')
    return '\n'.join(lines)


HOPS = [('detect', 'reading produced (envelope time) -> rule fired (detected_at_ms): input producer linger '
                    '(the seed\'s 10 ms) + produce + fetch + decode + stages before the rule'),
        ('send', 'rule fired -> alert handed to the output producer (its CreateTime)'),
        ('output', 'output producer linger + produce + the alert reader\'s fetch')]


def histogram_p99_ms(hist):
    """The upper bound (ms) of the bucket that holds the 99th percentile of a stats histogram."""
    if not hist['count']:
        return '-'
    for bound, cumulative in hist['buckets']:
        if cumulative >= 0.99 * hist['count']:
            return f'{bound * 1e3:g}'
    return '> 5000'


def write_markdown(results, path, command):
    out = [f'# iotstream benchmark ({results["mode"]} mode)', '',
           f'`{command}` on {os.uname().nodename}, {os.cpu_count()} CPUs, {time.strftime("%Y-%m-%d %H:%M")}; '
           f'one embedded broker (iotstream-broker) on the same machine; mean envelope '
           f'{results["envelope_bytes"]:.0f} bytes.', '',
           '## Producer (sent and acknowledged)', '', section_table(results['producer']), '',
           '## Pipeline (consume, decode, rules, aggregates, windows, outputs, commits)', '',
           section_table(results['pipeline']), '']
    lat = results.get('latency')
    out += ['## Event-to-alert latency', '']
    if lat:
        out += [f'Load generator at {lat["rate_target"]:,.0f}/s (achieved {lat["rate_achieved"]:,.0f}/s, '
                f'{lat["produced"]:,} readings, {lat["consumed"]:,} consumed by the pipeline); latency = wall time '
                'the alert is consumed from the alerts topic minus the reading\'s envelope timestamp (its produce '
                'time), first second excluded.', '',
                '| Alerts measured | p50 ms | p90 ms | p99 ms | max ms |', '|---|---|---|---|---|',
                f'| {lat["alerts_measured"]:,} | {lat["p50_ms"]:.0f} | {lat["p90_ms"]:.0f} | {lat["p99_ms"]:.0f} | '
                f'{lat["max_ms"]:.0f} |', '']
        hops = lat.get('hops')
        if hops:
            out += ['Per hop (each alert\'s own timestamps; percentiles of each hop, so they do not add up):', '',
                    '| Hop | What it holds | p50 ms | p90 ms | p99 ms |', '|---|---|---|---|---|']
            for name, what in HOPS:
                h = hops[name]
                out.append(f'| {name} | {what} | {h["p50_ms"]:.0f} | {h["p90_ms"]:.0f} | {h["p99_ms"]:.0f} |')
            stages = lat.get('stages') or {}
            if stages:
                out += ['', 'Inside "detect", per batch on the processing thread (stage process() time, from the '
                        'pipeline\'s stats histograms; upper bucket bounds):', '',
                        '| Stage | batches | mean ms | p99 ms <= |', '|---|---|---|---|']
                for name, st in stages.items():
                    hist = st['process_seconds']
                    out.append(f'| {name} | {hist["count"]:,} | '
                               f'{1e3 * hist["sum_s"] / hist["count"] if hist["count"] else 0:.2f} | '
                               f'{histogram_p99_ms(hist)} |')
            out.append('')
    else:
        out += ['(not run: --only)' if 'latency' in results.get('skipped', []) else '(failed)', '']
    mem = results.get('memory')
    out += ['## Memory per open sensor-window', '']
    if mem:
        big, small = mem['runs']['big'], mem['runs']['small']
        out += ['Resident-set growth of a pipeline process over its run, windows never closing; the run with '
                f'{small["sensors"]:,} sensors is subtracted from the one with {big["sensors"]:,} (same code, '
                'buffers and plugins), so what remains is per-sensor state: open window, aggregate, indexes.', '',
                '| Sensors | Records | RSS growth (MB) | live heap growth (MB, glibc mallinfo2) |', '|---|---|---|---|',
                f'| {big["sensors"]:,} | {big["records"]:,} | {(big["rss_after"] - big["rss_before"]) / 1e6:.1f} | '
                f'{(big["heap_after"] - big["heap_before"]) / 1e6:.1f} |',
                f'| {small["sensors"]:,} | {small["records"]:,} | {(small["rss_after"] - small["rss_before"]) / 1e6:.1f} | '
                f'{(small["heap_after"] - small["heap_before"]) / 1e6:.1f} |',
                '',
                f'**{mem["bytes_per_sensor_window"]:.0f} resident bytes per open sensor-window** '
                f'({mem["bytes_per_100k_sensors"] / 1e6:.1f} MB per 100K active sensors), of which '
                f'{mem["heap_bytes_per_sensor_window"]:.0f} bytes are live heap (the rest is memory malloc '
                'keeps after fetch buffers are freed).', '',
                'Distinct sensors, one reading each, every window open (growth over the run divided by the '
                'sensors, nothing subtracted: an upper bound that includes the host\'s per-sensor state; '
                'records/s from the first to the last record consumed, CPU of the pipeline process over the run):',
                '', '| Sensors | Records | live heap per sensor (bytes) | RSS per sensor (bytes) | Records/s | '
                'CPU µs/record |', '|---|---|---|---|---|---|']
        for label in ('big', 'huge'):
            r = mem['runs'][label]
            out.append(f'| {r["sensors"]:,} | {r["records"]:,} | {(r["heap_after"] - r["heap_before"]) / r["sensors"]:.0f} | '
                       f'{(r["rss_after"] - r["rss_before"]) / r["sensors"]:.0f} | {r["rate"]:,.0f} | '
                       f'{r["cpu_us_per_record"]:.2f} |')
        out.append('')
    else:
        out += ['(not run: --only)' if 'memory' in results.get('skipped', []) else '(failed)', '']
    if results['notes']:
        out += ['## Notes', ''] + [f'- {n}' for n in results['notes']] + ['']
    out += ['## Failures', ''] + ([f'- {f}' for f in results['failures']] or ['none']) + ['']
    with open(path, 'w') as f:
        f.write('\n'.join(out))


def write_chart(results, path):
    try:
        import matplotlib
        matplotlib.use('Agg')
        import matplotlib.pyplot as plt
    except ImportError:
        log('matplotlib missing: no chart')
        return False
    fig, axes = plt.subplots(2, 1, figsize=(10, 7.5))
    for ax, section, title in zip(axes, ('producer', 'pipeline'), ('Producer', 'End-to-end pipeline')):
        rows = [r for r in results[section] if 'error' not in r]
        names = [r['name'] for r in rows][::-1]
        rates = [r['rate'] for r in rows][::-1]
        colors = ['#d62728' if r['peer'].startswith('iotstream') else '#7f7f7f' if r['peer'] == 'rdkafka'
                  else '#1f77b4' for r in rows][::-1]
        bars = ax.barh(names, rates, color=colors)
        ax.set_xscale('log')
        ax.set_title(f'{title} (records/s, log scale)')
        for bar, rate in zip(bars, rates):
            ax.text(bar.get_width(), bar.get_y() + bar.get_height() / 2, f' {rate:,.0f}', va='center', fontsize=8)
        ax.set_xlim(right=max(rates + [1]) * 8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return True


def main():
    if '--worker' in sys.argv:
        return worker_main(sys.argv[1:])
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    mode = p.add_mutually_exclusive_group()
    mode.add_argument('--short', action='store_true', help='smoke run (seconds): every path on little data')
    mode.add_argument('--full', action='store_true', help='the measurement (default)')
    p.add_argument('--build-dir', default=os.path.join(SOURCE_DIR, 'build-bench'))
    p.add_argument('--out', default=os.path.join(SOURCE_DIR, 'bench-results'))
    p.add_argument('--only', action='append', choices=['producer', 'pipeline', 'latency', 'memory'],
                   help='run only this section (repeatable), e.g. --only pipeline')
    args = p.parse_args()
    bench = Bench(args)
    results = bench.run()
    command = 'scripts/bench.sh ' + ('--short' if args.short else '--full') + ''.join(
        f' --only {section}' for section in args.only or [])
    with open(os.path.join(bench.out, 'results.json'), 'w') as f:
        json.dump(results, f, indent=2, default=str)
    md = os.path.join(bench.out, 'results.md')
    write_markdown(results, md, command)
    write_chart(results, os.path.join(bench.out, 'results.png'))
    for name in ('data.tsv', 'memory-big.tsv', 'memory-small.tsv', 'memory-huge.tsv'):
        if os.path.exists(os.path.join(bench.out, name)):
            os.remove(os.path.join(bench.out, name))
    print(open(md).read())
    if results['failures']:
        print(f'0 passed, {len(results["failures"])} failed: ' + '; '.join(results['failures']), file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
