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
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# The project root instead of this folder, whose scripts (gcn.py, …) would
# shadow packages of the same name.
sys.path[0] = str(ROOT)

from benchmarks.common import (  # noqa: E402
    Processes, Run, latencies, parse_args)

QUICK = {'round_trips': 20, 'batch': 40, 'repeats': 2, 'warm_up': 5}


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


def start_worker(procs, kind, pool, broker, warm_up):
    """The worker of one application (``bare`` or ``gwcelery``) on its own
    Redis database; returns that application's task."""
    env = {'CELERY_BROKER_URL': broker, 'CELERY_RESULT_BACKEND': broker,
           'PYTHONPATH': str(ROOT)}
    pool_args = ['-P', 'solo'] if pool == 'solo' else ['-P', 'prefork', '-c', '2']
    name = f'dispatch-{kind}-{pool}'
    if kind == 'gwcelery':
        env['CELERY_CONFIG_MODULE'] = 'benchmarks.dispatch_conf'
        from benchmarks import dispatch_tasks
        from gwcelery import app
        task = dispatch_tasks.add
        app.conf.broker_url = app.conf.result_backend = broker
        procs.worker(app, name, 'celery', *pool_args, env=env,
                     loglevel='warning')
    else:
        from benchmarks import dispatch_bare
        app, task = dispatch_bare.app, dispatch_bare.add
        app.conf.broker_url = app.conf.result_backend = broker
        procs.worker(app, name, 'celery', *pool_args, env=env,
                     loglevel='warning',
                     command=('-m', 'celery', '-A', 'benchmarks.dispatch_bare'))
    for _ in range(warm_up):  # connections and pools
        task.delay(1, 1).get(timeout=30)
    return task


def run_pool(procs, pool, brokers, args):
    """Both workers up at once, each on its own Redis database; blocks of
    measurements alternate between them so that the machine's drift and
    noise fall on both alike."""
    kinds = ('bare', 'gwcelery')
    tasks = {kind: start_worker(procs, kind, pool, brokers[kind], args.warm_up)
             for kind in kinds}
    trips = {kind: [] for kind in kinds}
    trip_rates = {kind: [] for kind in kinds}
    batch_rates = {kind: [] for kind in kinds}
    try:
        for block in range(args.repeats):
            for kind in kinds if block % 2 == 0 else kinds[::-1]:
                lat, rate = round_trips(tasks[kind],
                                        args.round_trips // args.repeats)
                trips[kind] += lat
                trip_rates[kind].append(rate)
                batch_rates[kind].append(
                    batch(tasks[kind], args.batch // args.repeats))
    finally:
        procs.stop(*(f'dispatch-{kind}-{pool}' for kind in kinds), timeout=60)
    return {kind: {
        'round_trip': latencies(trips[kind]),
        'round_trips_per_s': round(statistics.median(trip_rates[kind]), 1),
        'batch_tasks_per_s': round(statistics.median(batch_rates[kind]), 1),
    } for kind in kinds}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--broker', help='Redis URL (default: start one)')
    parser.add_argument('--round-trips', type=int, default=2000)
    parser.add_argument('--batch', type=int, default=5000)
    parser.add_argument('--repeats', type=int, default=5,
                        help='alternating blocks per case (medians reported)')
    parser.add_argument('--warm-up', type=int, default=50,
                        help='calls before measuring, per worker')
    args = parse_args(parser, 'dispatch', QUICK)
    run = Run('dispatch', args)

    procs = Processes('dispatch')
    results = {}
    try:
        broker = args.broker or procs.redis()
        # One Redis database each, so neither worker takes the other's tasks.
        base = broker.rsplit('/', 1)[0]
        brokers = {'bare': f'{base}/1', 'gwcelery': f'{base}/2'}
        for pool in ('solo', 'prefork'):
            print(f'{pool} pool ...', flush=True)
            for kind, result in run_pool(procs, pool, brokers, args).items():
                results[f'{kind}/{pool}'] = result
    finally:
        procs.stop()
    for pool in ('solo', 'prefork'):
        bare, ours = results[f'bare/{pool}'], results[f'gwcelery/{pool}']
        results[f'ratio/{pool}'] = {
            key: round(ours[key] / bare[key], 3)
            for key in ('round_trips_per_s', 'batch_tasks_per_s')}
    print(f'\n{"case":<18}{"p50 ms":>9}{"p99 ms":>9}{"trips/s":>10}{"batch/s":>10}')
    for case, r in results.items():
        if case.startswith('ratio'):
            print(f'{case:<18}{"":>18}{r["round_trips_per_s"]:>10.2f}'
                  f'{r["batch_tasks_per_s"]:>10.2f}')
        else:
            print(f'{case:<18}{r["round_trip"]["p50_ms"]:>9.2f}'
                  f'{r["round_trip"]["p99_ms"]:>9.2f}'
                  f'{r["round_trips_per_s"]:>10.0f}'
                  f'{r["batch_tasks_per_s"]:>10.0f}')
    run.write(results)
    print(f'logs in {procs.folder}')


if __name__ == '__main__':
    main()
