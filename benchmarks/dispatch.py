#!/usr/bin/env python
"""Round-trip latency and throughput of a trivial task: gwcelery vs bare Celery.

Both apps use the same Redis server (a private redis-server started here
unless ``--broker`` is given; one database each) and the same worker
settings, in the same run, with both workers up at once and measurements
taken in blocks that alternate between them (medians over the blocks):

* round trip: ``add.delay(1, 1).get()`` one at a time (p50, p99, rate);
* throughput: a batch sent at once, timed until every result is back.

Each app's worker runs as a real subprocess with the solo pool (one
process: measures the framework, not the machine's core count) and then the
prefork pool with two processes. Results are printed and written as JSON.
"""
import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Replace this script's folder on sys.path: benchmarks/gcn.py there would
# hide pygcn's gcn package.
sys.path[0] = str(ROOT)

from benchmarks.common import free_port, percentile  # noqa: E402

BARE_APP = '''
from celery import Celery
app = Celery('bare')
app.conf.update(task_serializer='json', result_serializer='json',
                accept_content=['json'])

@app.task(name='bench.add')
def add(x, y):
    return x + y
'''


def wait_ready(app, hostname, proc, timeout=90):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f'worker {hostname} exited')
        if any(hostname in r for r in app.control.ping([hostname], timeout=0.5)):
            return
    raise TimeoutError(f'worker {hostname} did not start')


def round_trips(task, n):
    """Latencies (s) of n calls one at a time, and their rate."""
    latencies = []
    start = time.perf_counter()
    for _ in range(n):
        t0 = time.perf_counter()
        task.delay(1, 1).get(timeout=30)
        latencies.append(time.perf_counter() - t0)
    return latencies, n / (time.perf_counter() - start)


def batch(task, n):
    """Rate of n tasks sent at once, until every result is back."""
    t0 = time.perf_counter()
    results = [task.delay(i, 1) for i in range(n)]
    for result in results:
        result.get(timeout=120)
    return n / (time.perf_counter() - t0)


def start_worker(kind, pool, broker, workdir):
    env = {**os.environ, 'CELERY_BROKER_URL': broker,
           'CELERY_RESULT_BACKEND': broker,
           'PYTHONPATH': os.pathsep.join([str(workdir), str(ROOT)])}
    hostname = f'bench-{kind}-{pool}@{socket.gethostname()}'
    pool_args = ['-P', 'solo'] if pool == 'solo' else ['-P', 'prefork', '-c', '2']
    if kind == 'gwcelery':
        env['CELERY_CONFIG_MODULE'] = 'benchconf'
        command = [sys.executable, '-m', 'gwcelery']
        import benchtasks
        from gwcelery import app
        task = benchtasks.add
    else:
        command = [sys.executable, '-m', 'celery', '-A', 'bareapp']
        import bareapp
        app, task = bareapp.app, bareapp.add
    proc = subprocess.Popen(
        [*command, 'worker', '-n', hostname, '-l', 'warning',
         '--without-mingle', '--without-gossip', *pool_args],
        env=env, cwd=workdir, stdout=subprocess.DEVNULL,
        stderr=open(workdir / f'{kind}-{pool}.log', 'w'))
    app.conf.broker_url = app.conf.result_backend = broker
    wait_ready(app, hostname, proc)
    for _ in range(50):  # warm up connections and pools
        task.delay(1, 1).get(timeout=30)
    return proc, app, task


def run_pool(pool, brokers, workdir, args):
    """Both workers up at once, each on its own Redis database; blocks of
    measurements alternate between them so that the machine's drift and
    noise fall on both alike."""
    kinds = ('bare', 'gwcelery')
    workers = {kind: start_worker(kind, pool, brokers[kind], workdir)
               for kind in kinds}
    latencies = {kind: [] for kind in kinds}
    trip_rates = {kind: [] for kind in kinds}
    batch_rates = {kind: [] for kind in kinds}
    try:
        for block in range(args.repeats):
            for kind in kinds if block % 2 == 0 else kinds[::-1]:
                task = workers[kind][2]
                lat, rate = round_trips(task, args.round_trips // args.repeats)
                latencies[kind] += lat
                trip_rates[kind].append(rate)
                batch_rates[kind].append(batch(task, args.batch // args.repeats))
    finally:
        for proc, _, _ in workers.values():
            proc.terminate()
            proc.wait(60)
    return {kind: {
        'round_trip_p50_ms': 1e3 * percentile(latencies[kind], 0.5),
        'round_trip_p99_ms': 1e3 * percentile(latencies[kind], 0.99),
        'round_trips_per_s': statistics.median(trip_rates[kind]),
        'batch_tasks_per_s': statistics.median(batch_rates[kind]),
    } for kind in kinds}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--broker', help='Redis URL (default: start one)')
    parser.add_argument('--round-trips', type=int, default=2000)
    parser.add_argument('--batch', type=int, default=5000)
    parser.add_argument('--repeats', type=int, default=5,
                        help='alternating blocks per case (medians reported)')
    parser.add_argument('--output', default=str(
        ROOT / 'benchmarks' / 'results' / 'dispatch.json'))
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix='gwcelery-bench-'))
    (workdir / 'bareapp.py').write_text(BARE_APP)
    (workdir / 'benchconf.py').write_text(
        'from gwcelery.conf.local import *\nimports = ("benchtasks",)\n')
    (workdir / 'benchtasks.py').write_text(
        'from gwcelery import app\n\n@app.task\ndef add(x, y):\n'
        '    return x + y\n')
    sys.path.insert(0, str(workdir))

    redis = None
    broker = args.broker
    if broker is None:
        from gwcelery.deployment import find_redis_server
        port = free_port()
        redis = subprocess.Popen(
            [find_redis_server(), '--port', str(port), '--bind', '127.0.0.1',
             '--save', '', '--appendonly', 'no'], stdout=subprocess.DEVNULL)
        broker = f'redis://127.0.0.1:{port}/0'
        from gwcelery.deployment import redis_reachable
        deadline = time.monotonic() + 20
        while not redis_reachable(broker):
            if time.monotonic() > deadline:
                raise TimeoutError('redis-server did not start')
            time.sleep(0.05)
    results = {}
    # One Redis database each, so neither worker takes the other's tasks.
    base = broker.rsplit('/', 1)[0]
    brokers = {'bare': f'{base}/1', 'gwcelery': f'{base}/2'}
    try:
        for pool in ('solo', 'prefork'):
            print(f'{pool} pool ...', flush=True)
            for kind, result in run_pool(pool, brokers, workdir, args).items():
                results[f'{kind}/{pool}'] = result
    finally:
        if redis:
            redis.terminate()
    for pool in ('solo', 'prefork'):
        bare, ours = results[f'bare/{pool}'], results[f'gwcelery/{pool}']
        results[f'ratio/{pool}'] = {
            key: ours[key] / bare[key] for key in ('round_trips_per_s',
                                                   'batch_tasks_per_s')}
    print(f'\n{"case":<18}{"p50 ms":>9}{"p99 ms":>9}{"trips/s":>10}{"batch/s":>10}')
    for case, r in results.items():
        if case.startswith('ratio'):
            print(f'{case:<18}{"":>18}{r["round_trips_per_s"]:>10.2f}'
                  f'{r["batch_tasks_per_s"]:>10.2f}')
        else:
            print(f'{case:<18}{r["round_trip_p50_ms"]:>9.2f}'
                  f'{r["round_trip_p99_ms"]:>9.2f}{r["round_trips_per_s"]:>10.0f}'
                  f'{r["batch_tasks_per_s"]:>10.0f}')
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps(results, indent=2))
    print(f'\nwritten to {args.output}')


if __name__ == '__main__':
    main()
