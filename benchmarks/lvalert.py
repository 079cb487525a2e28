#!/usr/bin/env python
"""LVAlert latency: publish → handler start, both transports, one run.

For each transport (the embedded Redis Streams one, and XMPP on a private
prosody when prosody is installed) this starts a real ``gwcelery worker``
and ``beat``, waits for the listener, then publishes ``--count`` alerts
at ``--rate`` per second on a node whose handler notes when it starts.
Latency is the handler's start time minus the time just before
``publish()``. The baseline, in the same run and worker, is the same
handler sent straight through Celery (``handler.delay(alert)``): what is
left over is the LVAlert transport and listener.

Then recovery: the worker is stopped, ``--missed`` alerts are published,
a worker is started again, and the alerts that come back are counted
(XMPP returns what the server keeps: prosody's ``pubsub_max_items``, 100
here; Redis Streams keeps up to ``lvalert_stream_maxlen``).

Numbers are printed and written as JSON (``--output``).
"""
import argparse
import json
import shutil
import socket
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# The project root instead of this folder, whose scripts (gcn.py, …) would
# shadow packages of the same name.
sys.path[0] = str(ROOT)

from benchmarks.common import (  # noqa: E402
    Processes, Run, free_port, latencies, parse_args, wait_for)

CONF = 'benchmarks.lvalert_conf'
QUICK = {'count': 20, 'missed': 10, 'settle': 0.5}


def start_worker(procs, name, env, beat=True):
    """A general worker (and beat, which starts the listener on it)."""
    n = sum(key.startswith(f'{name}-worker') for key in procs.procs)
    procs.gwcelery(f'{name}-worker-{n}', 'worker', '-Q', 'celery', '-c', '6',
                   '-n', f'bench-lvalert-{name}-{n}@{socket.gethostname()}',
                   '-l', 'info', '--without-mingle', '--without-gossip',
                   env=env)
    if beat:
        procs.gwcelery(f'{name}-beat', 'beat', '-l', 'info',
                       '-s', str(procs.folder / f'{name}-beat-schedule'),
                       env=env)


def run_transport(procs, name, lvalert_url, broker, args, transport_options,
                  netrc=None):
    import redis

    from benchmarks import lvalert_handlers  # registers the handler here too
    from benchmarks.lvalert_handlers import NODE, RECORDS_KEY
    from gwcelery import app
    from gwcelery.lvalert import transport

    env = {'CELERY_CONFIG_MODULE': CONF,
           'CELERY_BROKER_URL': broker, 'CELERY_RESULT_BACKEND': broker,
           'GWCELERY_BENCH_LVALERT_URL': lvalert_url,
           'PYTHONPATH': str(ROOT)}
    if netrc:
        env['NETRC'] = str(netrc)
    client = redis.Redis.from_url(broker)
    client.flushdb()
    app.conf.broker_url = app.conf.result_backend = broker

    def records():
        return [json.loads(r) for r in client.lrange(RECORDS_KEY, 0, -1)]

    start_worker(procs, name, env)
    result = {}
    try:
        with transport.from_url(
                lvalert_url, **transport_options) as publisher:
            publisher.create_node(NODE)
            # The listener is up when a probe comes through; probes sent
            # before it subscribed are lost, so one goes every second.
            next_probe = [0.0]

            def heard():
                if any(r['kind'] == 'probe' for r in records()):
                    return True
                if time.monotonic() > next_probe[0]:
                    publisher.publish(NODE, {'kind': 'probe'})
                    next_probe[0] = time.monotonic() + 1
                return False
            wait_for(heard, timeout=120, what=f'the {name} listener')
            client.delete(RECORDS_KEY)

            interval = 1 / args.rate
            for kind in ('lvalert', 'celery'):
                start = time.perf_counter()
                for n in range(args.count):
                    alert = {'n': n, 'uid': n, 'kind': kind,
                             'sent': time.time()}
                    if kind == 'lvalert':
                        publisher.publish(NODE, alert)
                    else:
                        lvalert_handlers.record.delay(alert)
                    pause = start + (n + 1) * interval - time.perf_counter()
                    if pause > 0:
                        time.sleep(pause)  # the pace of the load
                wait_for(lambda: sum(r['kind'] == kind for r in records())
                         >= args.count, timeout=120,
                         what=f'{name} {kind} records')
            measured = {}
            for kind in ('lvalert', 'celery'):
                mine = [r for r in records() if r['kind'] == kind]
                assert sorted(r['n'] for r in mine) == list(range(args.count))
                measured[kind] = latencies(
                    [r['start'] - r['sent'] for r in mine])
            result['publish_to_handler'] = measured['lvalert']
            result['celery_baseline'] = measured['celery']
            result['overhead_p50_ms'] = round(
                measured['lvalert']['p50_ms'] - measured['celery']['p50_ms'],
                3)

            # Recovery: publish while no listener runs.
            procs.stop(*(k for k in procs.procs
                         if k.startswith(f'{name}-worker')), timeout=60)
            client.delete(RECORDS_KEY)
            for n in range(args.missed):
                publisher.publish(NODE, {'n': n, 'kind': 'missed',
                                         'sent': time.time()})
            restarted = time.monotonic()
            start_worker(procs, name, env, beat=False)
            expected = min(args.missed, args.expect_xmpp_kept
                           if name == 'xmpp' else args.missed)
            try:
                wait_for(lambda: len(records()) >= expected, timeout=120,
                         what=f'{name} recovered items')
            except TimeoutError:
                pass  # fewer came back: that is what is measured
            back = time.monotonic() - restarted
            # Duplicates would come after the last new item.
            time.sleep(args.settle)
            got = sorted({r['n'] for r in records() if r['kind'] == 'missed'})
            result['recovery'] = {
                'published_while_down': args.missed,
                'recovered': len(got),
                'duplicates': len(records()) - len(got),
                'oldest_recovered': got[0] if got else None,
                'seconds_after_worker_start': round(back, 1)}
    finally:
        procs.stop(*(k for k in procs.procs if k.startswith(f'{name}-')),
                   timeout=60)
        client.close()
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--count', type=int, default=1000)
    parser.add_argument('--rate', type=float, default=100.0,
                        help='alerts published per second')
    parser.add_argument('--missed', type=int, default=150,
                        help='alerts published while no listener runs')
    parser.add_argument('--settle', type=float, default=2.0,
                        help='seconds to watch for duplicates after recovery')
    parser.add_argument('--xmpp-node-max-items', default='max',
                        help="items an XMPP node keeps: 'max' (default), a "
                             "number, or 'default' for prosody's own (20)")
    args = parse_args(parser, 'lvalert', QUICK)
    run = Run('lvalert', args)
    if args.xmpp_node_max_items == 'default':
        args.xmpp_node_max_items = None
    # What prosody keeps (its pubsub_max_items is 100 in the test server).
    args.expect_xmpp_kept = (20 if args.xmpp_node_max_items is None
                             else 100 if args.xmpp_node_max_items == 'max'
                             else int(args.xmpp_node_max_items))

    from tests.fixtures.lvalert import PUBLISHER, Prosody

    procs = Processes('lvalert')
    prosody = None
    results = {}
    try:
        broker = procs.redis()
        results['redis'] = run_transport(
            procs, 'redis', broker, broker, args, {})
        if shutil.which('prosody'):
            (procs.folder / 'prosody').mkdir()
            prosody = Prosody(procs.folder / 'prosody', free_port())
            prosody.start()
            username, password = PUBLISHER
            results['xmpp'] = run_transport(
                procs, 'xmpp', prosody.url, broker, args,
                {'username': username, 'password': password,
                 'node_max_items': args.xmpp_node_max_items},
                netrc=prosody.netrc)
        else:
            print('prosody is not installed: XMPP skipped')
    finally:
        if prosody:
            prosody.stop()
        procs.stop()

    for name in ('redis', 'xmpp'):
        r = results.get(name)
        if not r:
            continue
        p, b, rec = r['publish_to_handler'], r['celery_baseline'], r['recovery']
        print(f'{name:6s} publish→handler p50 {p["p50_ms"]:6.2f} ms  '
              f'p99 {p["p99_ms"]:6.2f} ms  max {p["max_ms"]:7.1f} ms   '
              f'(Celery alone p50 {b["p50_ms"]:.2f} ms, p99 '
              f'{b["p99_ms"]:.2f} ms)')
        print(f'{"":6s} recovery: {rec["recovered"]} of '
              f'{rec["published_while_down"]} published while down, '
              f'{rec["duplicates"]} duplicates')
    run.write(results)
    print(f'logs in {procs.folder}')


if __name__ == '__main__':
    main()
