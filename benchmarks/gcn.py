#!/usr/bin/env python
"""GCN and VOEvent latency and throughput, against baselines in the same run.

1. Broadcaster → pygcn's client (``gcn.listen`` in subprocesses): send → ack
   latency (p50, p99) and notices per second, sending one notice at a time
   and waiting for every subscriber's ack, with 1 and 4 subscribers.
   Baseline: the simplest possible VTP server (a blocking socket that writes
   the packet and reads the ack) with the same pygcn client.
2. ``voevent.send`` as a task: ``send.delay(payload).get()`` through Redis
   and a real ``gwcelery worker -Q voevent -P solo`` to one pygcn client.
3. Local feed → handler: ``gwcelery gcn feed`` serves notices queued in
   Redis; the real listener (``gcn.listen`` in a worker started by beat)
   dispatches them to a recording handler task. Latency from queueing to
   the handler running. Baseline: pygcn's client with an in-process handler
   connected to the same feed, for the same notices.

A private redis-server is started on a free port. Results are printed and
written to benchmarks/results/gcn.json.
"""
import argparse
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# This script's folder comes first on sys.path, where this file would hide
# pygcn's package, also named gcn.
sys.path[:] = [p for p in sys.path
               if Path(p or '.').resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(ROOT))

from benchmarks.common import free_port, percentile  # noqa: E402
os.environ['CELERY_CONFIG_MODULE'] = 'tests.conf'
os.environ['PYTHONPATH'] = os.pathsep.join(
    filter(None, [str(ROOT), os.environ.get('PYTHONPATH')]))

SAMPLE = ROOT / 'tests' / 'data' / 'gcn' / 'fermi_grb_gcn.xml'
LVC_SAMPLE = ROOT / 'tests' / 'data' / 'gcn' / 'G298048-1-Initial.xml'

PYGCN_LISTEN = ('import sys, gcn; gcn.listen(host="127.0.0.1", '
                'port=int(sys.argv[1]), max_reconnect_timeout=1)')


def summary(latencies, elapsed=None):
    result = {'n': len(latencies),
              'p50_ms': 1e3 * percentile(latencies, 0.5),
              'p99_ms': 1e3 * percentile(latencies, 0.99)}
    if elapsed:
        result['per_s'] = len(latencies) / elapsed
    return result


def wait_for(condition, timeout, what):
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f'timed out waiting for {what}')
        time.sleep(0.02)


def with_ivorn(payload, ivorn):
    return re.sub(rb'ivorn="[^"]*"', f'ivorn="{ivorn}"'.encode(), payload,
                  count=1)


class Procs:
    """Subprocesses to kill at the end, whatever happens."""

    def __init__(self, folder):
        self.folder = Path(folder)
        self.procs = []

    def start(self, name, args, env=None):
        proc = subprocess.Popen(
            args, stdout=open(self.folder / f'{name}.log', 'w'),
            stderr=subprocess.STDOUT, env={**os.environ, **(env or {})},
            cwd=ROOT, start_new_session=True)
        self.procs.append(proc)
        return proc

    def log(self, name):
        return (self.folder / f'{name}.log').read_text(errors='replace')

    def stop_all(self):
        for proc in reversed(self.procs):
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, 9)
                proc.wait()


# -- 1. broadcaster → pygcn ----------------------------------------------

def bench_broadcaster(procs, n_clients, n):
    from gwcelery.vtp.server import Broadcaster, BroadcasterThread
    payload = LVC_SAMPLE.read_bytes()
    thread = BroadcasterThread(Broadcaster('127.0.0.1:0', ('127.0.0.1',),
                                           ack_timeout=10)).start()
    try:
        port = thread.broadcaster.address[1]
        for i in range(n_clients):
            procs.start(f'pygcn-{n_clients}-{i}',
                        [sys.executable, '-c', PYGCN_LISTEN, str(port)])
        wait_for(lambda: len(thread.info()['peers']) == n_clients, 30,
                 'pygcn clients')
        for i in range(20):
            thread.send(with_ivorn(payload, f'ivo://bench#warm{i}'))
        acks, sends = [], []
        start = time.perf_counter()
        for i in range(n):
            t0 = time.perf_counter()
            result = thread.send(with_ivorn(payload, f'ivo://bench#{i}'))
            sends.append(time.perf_counter() - t0)
            assert len(result['acked']) == n_clients, result
            acks.extend(result['ack_latency'].values())
        elapsed = time.perf_counter() - start
    finally:
        thread.stop()
    return {'ack': summary(acks), 'send_all_acked': summary(sends, elapsed)}


def bench_baseline_server(procs, n):
    from gwcelery.vtp.framing import frame, recv_packet
    payload = LVC_SAMPLE.read_bytes()
    server = socket.create_server(('127.0.0.1', 0))
    port = server.getsockname()[1]
    procs.start('pygcn-baseline',
                [sys.executable, '-c', PYGCN_LISTEN, str(port)])
    conn, _ = server.accept()
    conn.settimeout(10)
    try:
        for i in range(20):
            conn.sendall(frame(with_ivorn(payload, f'ivo://bench#warm{i}')))
            recv_packet(conn)
        latencies = []
        start = time.perf_counter()
        for i in range(n):
            t0 = time.perf_counter()
            conn.sendall(frame(with_ivorn(payload, f'ivo://bench#{i}')))
            recv_packet(conn)
            latencies.append(time.perf_counter() - t0)
        elapsed = time.perf_counter() - start
    finally:
        conn.close()
        server.close()
    return summary(latencies, elapsed)


# -- 2. voevent.send as a task -------------------------------------------

def start_worker(procs, app, name, queue, *options, env=None):
    hostname = f'bench-{name}@{socket.gethostname()}'
    proc = procs.start(name, [
        sys.executable, '-m', 'gwcelery', 'worker', '-Q', queue, '-n',
        hostname, '-l', 'info', '--without-mingle', '--without-gossip',
        *options], env=env)

    def ready():
        if proc.poll() is not None:
            raise RuntimeError(procs.log(name)[-3000:])
        return any(hostname in r
                   for r in app.control.ping([hostname], timeout=0.5))
    wait_for(ready, 90, f'worker {name}')
    return hostname


def bench_send_task(procs, app, n):
    from gwcelery.tasks import voevent
    from gwcelery.vtp.server import parse_address
    payload = LVC_SAMPLE.read_bytes()
    hostname = start_worker(procs, app, 'voevent', 'voevent', '-P', 'solo')

    def stats():
        return app.control.inspect([hostname], timeout=2).stats()[hostname][
            'voevent_broadcaster']
    port = parse_address(stats()['address'])[1]
    procs.start('pygcn-task', [sys.executable, '-c', PYGCN_LISTEN, str(port)])
    wait_for(lambda: stats()['peers'], 30, 'pygcn client of the worker')
    for i in range(20):
        voevent.send.delay(with_ivorn(payload, f'ivo://t#w{i}')).get(30)
    latencies, acks = [], []
    start = time.perf_counter()
    for i in range(n):
        t0 = time.perf_counter()
        result = voevent.send.delay(
            with_ivorn(payload, f'ivo://t#{i}')).get(30)
        latencies.append(time.perf_counter() - t0)
        acks.extend(result['ack_latency'].values())
    elapsed = time.perf_counter() - start
    return {'task_round_trip': summary(latencies, elapsed),
            'ack_in_worker': summary(acks)}


# -- 3. feed → handler ----------------------------------------------------

def bench_feed(procs, app, redis_url, n):
    import redis
    from gwcelery.vtp.feed import enqueue
    from tests.fixtures.gcn import _PYGCN_CLIENT, RECEIVED_KEY
    client = redis.Redis.from_url(redis_url)
    port = free_port()
    procs.start('feed', [sys.executable, '-m', 'gwcelery', 'gcn', 'feed',
                         '--address', f'127.0.0.1:{port}'])
    env = {'GWCELERY_TEST_GCN_ADDRESS': f'127.0.0.1:{port}'}
    start_worker(procs, app, 'general', 'celery', '-c', '6', env=env)
    procs.start('beat', [sys.executable, '-m', 'gwcelery', 'beat', '-l',
                         'info', '-s', str(procs.folder / 'beat-schedule')],
                env=env)
    wait_for(lambda: 'connected (1 connected)' in procs.log('feed'), 90,
             'the listener to connect to the feed')
    baseline_key = 'bench:pygcn'
    procs.start('pygcn-feed', [sys.executable, '-c', _PYGCN_CLIENT,
                               '127.0.0.1', str(port), redis_url,
                               baseline_key])
    wait_for(lambda: 'connected (2 connected)' in procs.log('feed'), 30,
             'the baseline client to connect to the feed')
    payload = SAMPLE.read_bytes()

    def run(count, prefix):
        handler, baseline = [], []
        for i in range(count):
            ivorn = f'ivo://bench#{prefix}{i}'
            client.delete(RECEIVED_KEY, baseline_key)
            t0 = time.time()
            enqueue(redis_url, [with_ivorn(payload, ivorn)])
            wait_for(lambda: client.llen(RECEIVED_KEY)
                     and client.llen(baseline_key), 30, ivorn)
            record = json.loads(client.lindex(RECEIVED_KEY, 0))
            other = json.loads(client.lindex(baseline_key, 0))
            assert record['ivorn'] == other['ivorn'] == ivorn
            handler.append(record['time'] - t0)
            baseline.append(other['time'] - t0)
        return handler, baseline

    run(5, 'warm')
    handler, baseline = run(n, '')
    return {'queued_to_celery_handler': summary(handler),
            'baseline_queued_to_pygcn_handler': summary(baseline)}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('-n', type=int, default=500,
                        help='notices per broadcaster measurement')
    parser.add_argument('--tasks', type=int, default=200,
                        help='voevent.send round trips')
    parser.add_argument('--feed', type=int, default=50,
                        help='notices through the local feed')
    args = parser.parse_args()

    from gwcelery.deployment import find_redis_server
    folder = tempfile.mkdtemp(prefix='gwcelery-bench-gcn-')
    procs = Procs(folder)
    redis_port = free_port()
    redis_url = f'redis://127.0.0.1:{redis_port}/0'
    os.environ['CELERY_BROKER_URL'] = os.environ['CELERY_RESULT_BACKEND'] = \
        redis_url
    results = {'machine': {'cpus': os.cpu_count()}, 'n': vars(args)}
    try:
        procs.start('redis', [find_redis_server(), '--port', str(redis_port),
                              '--bind', '127.0.0.1', '--save', '',
                              '--appendonly', 'no', '--dir', folder])
        from gwcelery import app
        app.loader.import_default_modules()

        results['baseline_blocking_server_to_pygcn'] = \
            bench_baseline_server(procs, args.n)
        for n_clients in (1, 4):
            results[f'broadcaster_to_{n_clients}_pygcn'] = bench_broadcaster(
                procs, n_clients, args.n)
        results['voevent_send_task'] = bench_send_task(
            procs, app, args.tasks)
        results['feed_to_handler'] = bench_feed(
            procs, app, redis_url, args.feed)
    finally:
        procs.stop_all()

    print(json.dumps(results, indent=2))
    out = ROOT / 'benchmarks' / 'results'
    out.mkdir(parents=True, exist_ok=True)
    (out / 'gcn.json').write_text(json.dumps(results, indent=2))
    print(f'written to {out / "gcn.json"}; logs in {folder}')


if __name__ == '__main__':
    main()
