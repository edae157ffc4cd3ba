#!/usr/bin/python3
"""A/B runs on one broker: alternates iotstream-bench commands of two builds (e.g. the library
before and after a change) so that their ratios come from the same run on the same box.

usage: tests/bench/ab.py ROUNDS 'LABEL|WHICH|COMMAND ARGS...' ...
  WHICH: 'build' (BUILD_DIR's iotstream-bench, library and plugins) or a folder holding a copy of
         an older build: iotstream-bench, libiotstream.so*, plugins/*.so (LD_LIBRARY_PATH and
         IOTSTREAM_PLUGIN_DIR point there);
  ARGS are '|'-separated; {P} becomes a fresh prefix (output topics {P}-windows..., an input topic
  in-{P}); --count and --bootstrap are added.
env: AB_BUILD (default build), AB_COUNT (records pre-filled into topic 'pipe', default 2000000),
     AB_PARTS (its partitions, 64), AB_SENSORS (100000), AB_PERF (labels to run under perf record).
Example (docs/benchmarks.md, issue 16):
  tests/bench/ab.py 3 'raw|build|consume-rdkafka|--topic|pipe' 'before|/tmp/old|pipeline|--topic|pipe|--prefix|{P}' \\
                      'after|build|pipeline|--topic|pipe|--prefix|{P}'
"""
import json
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import run_bench as rb  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(HERE))
BUILD = os.path.abspath(os.environ.get('AB_BUILD', os.path.join(ROOT, 'build')))
count = int(os.environ.get('AB_COUNT', '2000000'))
parts = int(os.environ.get('AB_PARTS', '64'))
sensors = int(os.environ.get('AB_SENSORS', '100000'))
perf_labels = os.environ.get('AB_PERF', '').split(',')


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    rounds, variants = int(sys.argv[1]), [v.split('|') for v in sys.argv[2:]]
    work = tempfile.mkdtemp(prefix='iotstream-ab-')
    data = os.path.join(work, 'data.tsv')
    rb.make_data(data, 200000, sensors, int(time.time() * 1e6), 1)
    runs = rounds * len(variants)
    topics = [('pipe', parts)]
    for i in range(runs):
        topics += [(f'o{i}-{k}', 8) for k in rb.OUTPUT_KINDS] + [(f'in-o{i}', 8)]
    cmd = [os.path.join(BUILD, 'host_example', 'iotstream-broker'), '--quiet']
    for name, p in topics:
        cmd += ['--topic', f'{name}:{p}']
    broker = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    boot = broker.stdout.readline().strip()
    bench = os.path.join(BUILD, 'tests', 'bench', 'iotstream-bench')
    try:
        subprocess.run([bench, 'produce', '--mode', 'rdkafka', '--topic', 'pipe', '--data', data, '--count', str(count),
                        '--kafka', 'compression.type=lz4', '--kafka', 'linger.ms=50', '--kafka', 'batch.size=1000000',
                        '--bootstrap', boot], check=True, capture_output=True)
        n = 0
        for _ in range(rounds):
            for label, which, *args in variants:
                env, exe = dict(os.environ), bench
                if which != 'build':
                    env['LD_LIBRARY_PATH'] = which
                    env['IOTSTREAM_PLUGIN_DIR'] = os.path.join(which, 'plugins')
                    exe = os.path.join(which, 'iotstream-bench')
                args = [a.replace('{P}', f'o{n}') for a in args]
                n += 1
                pre = (['perf', 'record', '-F', '999', '-g', '-o', os.path.join(work, f'perf-{label}-{n}.data')]
                       if label in perf_labels else [])
                p = subprocess.run([*pre, exe, *args, '--count', str(count), '--bootstrap', boot],
                                   capture_output=True, text=True, env=env)
                load = os.getloadavg()[0]
                if p.returncode:
                    print(f'{label}: FAILED {p.stderr[-500:]}', flush=True)
                    continue
                r = json.loads([line for line in p.stdout.splitlines() if line.startswith('{')][-1])
                if 'p99_ms' in r:  # latency
                    print(f'{label:14s} p50 {r["p50_ms"]} p90 {r["p90_ms"]} p99 {r["p99_ms"]} ms, consumed '
                          f'{r["consumed"]}/{r["produced"]}, hops {json.dumps(r.get("hops", {}))}, load {load:.1f}',
                          flush=True)
                    continue
                line = (f'{label:14s} {r["records"] / r["elapsed_s"]:10,.0f}/s  CPU '
                        f'{r["cpu_s"] * 1e6 / r["records"]:.2f} µs/record')
                if 'heap_after' in r:  # memory
                    line += f'  heap {(r["heap_after"] - r["heap_before"]) / sensors:.0f} B/sensor'
                print(f'{line}  load {load:.1f}', flush=True)
        print(f'(perf data, if any, in {work})' if any(perf_labels) else '', flush=True)
    finally:
        broker.terminate()
        broker.wait()
        os.remove(data)


if __name__ == '__main__':
    main()
