#!/usr/bin/env python
"""Round-trip latency and throughput of a trivial task: gwcelery vs bare Celery.

Both apps use the same Redis (a private redis-server started here unless
``--broker`` is given) and the same worker settings, in the same run:

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
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Replace this script's folder on sys.path: benchmarks/gcn.py there would
# hide pygcn's gcn package.
sys.path[0] = str(ROOT)

BARE_APP = '''
from celery import Celery
app = Celery('bare')
app.conf.update(task_serializer='json', result_serializer='json',
                accept_content=['json'])

@app.task(name='bench.add')
def add(x, y):
    return x + y
'''


def free_port():
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def wait_ready(app, hostname, proc, timeout=90):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f'worker {hostname} exited')
        if any(hostname in r for r in app.control.ping([hostname], timeout=0.5)):
            return
    raise TimeoutError(f'worker {hostname} did not start')


def percentile(values, q):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]


def measure(app, task, n_round_trips, n_batch):
    for _ in range(20):  # warm up connections and pools
        task.delay(1, 1).get(timeout=30)
    latencies = []
    start = time.perf_counter()
    for _ in range(n_round_trips):
        t0 = time.perf_counter()
        task.delay(1, 1).get(timeout=30)
        latencies.append(time.perf_counter() - t0)
    elapsed = time.perf_counter() - start
    t0 = time.perf_counter()
    results = [task.delay(i, 1) for i in range(n_batch)]
    for result in results:
        result.get(timeout=120)
    batch = time.perf_counter() - t0
    return {
        'round_trip_p50_ms': 1e3 * percentile(latencies, 0.5),
        'round_trip_p99_ms': 1e3 * percentile(latencies, 0.99),
        'round_trips_per_s': n_round_trips / elapsed,
        'batch_tasks_per_s': n_batch / batch,
    }


def run_case(kind, pool, broker, workdir, args):
    env = {**os.environ, 'CELERY_BROKER_URL': broker,
           'CELERY_RESULT_BACKEND': broker,
           'PYTHONPATH': os.pathsep.join([str(workdir), str(ROOT)])}
    hostname = f'bench-{kind}-{pool}@{socket.gethostname()}'
    pool_args = ['-P', 'solo'] if pool == 'solo' else ['-P', 'prefork', '-c', '2']
    if kind == 'gwcelery':
        env['CELERY_CONFIG_MODULE'] = 'benchconf'
        command = [sys.executable, '-m', 'gwcelery']
    else:
        command = [sys.executable, '-m', 'celery', '-A', 'bareapp']
    proc = subprocess.Popen(
        [*command, 'worker', '-n', hostname, '-l', 'warning',
         '--without-mingle', '--without-gossip', *pool_args],
        env=env, cwd=workdir, stdout=subprocess.DEVNULL,
        stderr=open(workdir / f'{kind}-{pool}.log', 'w'))
    try:
        if kind == 'gwcelery':
            import benchtasks
            from gwcelery import app
            task = benchtasks.add
        else:
            import bareapp
            app, task = bareapp.app, bareapp.add
        app.conf.broker_url = app.conf.result_backend = broker
        wait_ready(app, hostname, proc)
        return measure(app, task, args.round_trips, args.batch)
    finally:
        proc.terminate()
        proc.wait(60)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--broker', help='Redis URL (default: start one)')
    parser.add_argument('--round-trips', type=int, default=2000)
    parser.add_argument('--batch', type=int, default=5000)
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
    try:
        for pool in ('solo', 'prefork'):
            for kind in ('bare', 'gwcelery'):
                print(f'{kind} Celery, {pool} pool ...', flush=True)
                results[f'{kind}/{pool}'] = run_case(
                    kind, pool, broker, workdir, args)
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
