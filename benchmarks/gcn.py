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
written as JSON (``--output``).
"""
import argparse
import json
import os
import re
import socket
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# The project root instead of this folder, where this file would hide
# pygcn's package, also named gcn.
sys.path[0] = str(ROOT)

from benchmarks.common import (  # noqa: E402
    Processes, Run, free_port, latencies, parse_args, wait_for)

CONF = 'benchmarks.gcn_conf'
SAMPLE = ROOT / 'tests' / 'data' / 'gcn' / 'fermi_grb_gcn.xml'
LVC_SAMPLE = ROOT / 'tests' / 'data' / 'gcn' / 'G298048-1-Initial.xml'
QUICK = {'n': 20, 'tasks': 10, 'feed': 3, 'warm_up': 2}

PYGCN_LISTEN = ('import sys, gcn; gcn.listen(host="127.0.0.1", '
                'port=int(sys.argv[1]), max_reconnect_timeout=1)')


def throughput(seconds, elapsed):
    """:func:`latencies` and the rate over ``elapsed`` seconds."""
    return {**latencies(seconds), 'per_s': round(len(seconds) / elapsed, 1)}


def with_ivorn(payload, ivorn):
    return re.sub(rb'ivorn="[^"]*"', f'ivorn="{ivorn}"'.encode(), payload,
                  count=1)


def start_pygcn(procs, name, port):
    procs.start(name, [sys.executable, '-c', PYGCN_LISTEN, str(port)])


# -- 1. broadcaster → pygcn ----------------------------------------------

def bench_broadcaster(procs, n_clients, n, warm_up):
    from gwcelery.vtp.server import Broadcaster, BroadcasterThread
    payload = LVC_SAMPLE.read_bytes()
    thread = BroadcasterThread(Broadcaster('127.0.0.1:0', ('127.0.0.1',),
                                           ack_timeout=10)).start()
    try:
        port = thread.broadcaster.address[1]
        for i in range(n_clients):
            start_pygcn(procs, f'pygcn-{n_clients}-{i}', port)
        wait_for(lambda: len(thread.info()['peers']) == n_clients,
                 timeout=30, what='pygcn clients')
        for i in range(warm_up):
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
        procs.stop(*(f'pygcn-{n_clients}-{i}' for i in range(n_clients)))
    return {'ack': latencies(acks),
            'send_all_acked': throughput(sends, elapsed)}


def bench_baseline_server(procs, n, warm_up):
    from gwcelery.vtp.framing import frame, recv_packet
    payload = LVC_SAMPLE.read_bytes()
    server = socket.create_server(('127.0.0.1', 0))
    server.settimeout(30)
    start_pygcn(procs, 'pygcn-baseline', server.getsockname()[1])
    conn, _ = server.accept()
    conn.settimeout(10)
    try:
        for i in range(warm_up):
            conn.sendall(frame(with_ivorn(payload, f'ivo://bench#warm{i}')))
            recv_packet(conn)
        seconds = []
        start = time.perf_counter()
        for i in range(n):
            t0 = time.perf_counter()
            conn.sendall(frame(with_ivorn(payload, f'ivo://bench#{i}')))
            recv_packet(conn)
            seconds.append(time.perf_counter() - t0)
        elapsed = time.perf_counter() - start
    finally:
        conn.close()
        server.close()
        procs.stop('pygcn-baseline')
    return throughput(seconds, elapsed)


# -- 2. voevent.send as a task -------------------------------------------

def bench_send_task(procs, app, n, warm_up):
    from gwcelery.tasks import voevent
    from gwcelery.vtp.server import parse_address
    payload = LVC_SAMPLE.read_bytes()
    hostname = procs.worker(app, 'voevent', 'voevent', '-P', 'solo')

    def stats():
        return app.control.inspect([hostname], timeout=2).stats()[hostname][
            'voevent_broadcaster']
    start_pygcn(procs, 'pygcn-task', parse_address(stats()['address'])[1])
    wait_for(lambda: stats()['peers'], timeout=30,
             what='pygcn client of the worker')
    for i in range(warm_up):
        voevent.send.delay(with_ivorn(payload, f'ivo://t#w{i}')).get(30)
    seconds, acks = [], []
    start = time.perf_counter()
    for i in range(n):
        t0 = time.perf_counter()
        result = voevent.send.delay(
            with_ivorn(payload, f'ivo://t#{i}')).get(30)
        seconds.append(time.perf_counter() - t0)
        acks.extend(result['ack_latency'].values())
    elapsed = time.perf_counter() - start
    procs.stop('voevent', 'pygcn-task')
    return {'task_round_trip': throughput(seconds, elapsed),
            'ack_in_worker': latencies(acks)}


# -- 3. feed → handler ----------------------------------------------------

def bench_feed(procs, app, redis_url, n, warm_up):
    import redis

    from benchmarks.gcn_handlers import RECEIVED_KEY
    from gwcelery.vtp.feed import enqueue
    from tests.fixtures.gcn import PygcnClient
    client = redis.Redis.from_url(redis_url)
    port = free_port()
    procs.gwcelery('feed', 'gcn', 'feed', '--address', f'127.0.0.1:{port}')
    env = {'GWCELERY_BENCH_GCN_ADDRESS': f'127.0.0.1:{port}'}
    procs.worker(app, 'general', 'celery', '-c', '6', env=env)
    procs.gwcelery('beat', 'beat', '-l', 'info',
                   '-s', str(procs.folder / 'beat-schedule'), env=env)
    wait_for(lambda: 'connected (1 connected)' in procs.log('feed'),
             timeout=90, what='the listener to connect to the feed')
    baseline = PygcnClient('127.0.0.1', port, redis_url, 'bench:pygcn',
                           procs.folder / 'pygcn-feed.log')
    try:
        wait_for(lambda: 'connected (2 connected)' in procs.log('feed'),
                 timeout=30, what='the baseline client to connect to the feed')
        payload = SAMPLE.read_bytes()

        def run(count, prefix):
            handler, pygcn = [], []
            for i in range(count):
                ivorn = f'ivo://bench#{prefix}{i}'
                client.delete(RECEIVED_KEY, baseline.key)
                t0 = time.time()
                enqueue(redis_url, [with_ivorn(payload, ivorn)])
                wait_for(lambda: client.llen(RECEIVED_KEY)
                         and client.llen(baseline.key), timeout=30,
                         interval=0.02, what=ivorn)
                record = json.loads(client.lindex(RECEIVED_KEY, 0))
                (other,) = baseline.received()
                assert record['ivorn'] == other['ivorn'] == ivorn
                handler.append(record['time'] - t0)
                pygcn.append(other['time'] - t0)
            return handler, pygcn

        run(warm_up, 'warm')
        handler, pygcn = run(n, '')
    finally:
        baseline.stop()
        client.close()
    return {'queued_to_celery_handler': latencies(handler),
            'baseline_queued_to_pygcn_handler': latencies(pygcn)}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('-n', type=int, default=500,
                        help='notices per broadcaster measurement')
    parser.add_argument('--tasks', type=int, default=200,
                        help='voevent.send round trips')
    parser.add_argument('--feed', type=int, default=50,
                        help='notices through the local feed')
    parser.add_argument('--warm-up', type=int, default=20,
                        help='notices sent before each measurement')
    args = parse_args(parser, 'gcn', QUICK)
    run = Run('gcn', args)

    procs = Processes('gcn')
    results = {}
    try:
        redis_url = procs.redis()
        # This process and every child read them when gwcelery is imported.
        os.environ.update({'CELERY_CONFIG_MODULE': CONF,
                           'CELERY_BROKER_URL': redis_url,
                           'CELERY_RESULT_BACKEND': redis_url,
                           'PYTHONPATH': str(ROOT)})
        from gwcelery import app
        app.loader.import_default_modules()

        results['baseline_blocking_server_to_pygcn'] = \
            bench_baseline_server(procs, args.n, args.warm_up)
        for n_clients in (1, 4):
            results[f'broadcaster_to_{n_clients}_pygcn'] = bench_broadcaster(
                procs, n_clients, args.n, args.warm_up)
        results['voevent_send_task'] = bench_send_task(
            procs, app, args.tasks, args.warm_up)
        results['feed_to_handler'] = bench_feed(
            procs, app, redis_url, args.feed, args.warm_up)
    finally:
        procs.stop()

    print(json.dumps(results, indent=2))
    run.write(results)
    print(f'logs in {procs.folder}')


if __name__ == '__main__':
    main()
