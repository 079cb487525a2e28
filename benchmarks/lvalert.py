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

Numbers are printed and written to benchmarks/results/lvalert.json.
"""
import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# The project root instead of this folder, whose scripts (gcn.py, …) would
# shadow packages of the same name.
sys.path[0] = str(ROOT)

from benchmarks.common import free_port, percentile, wait_for  # noqa: E402

CONF = 'benchmarks.lvalert_conf'


class Processes:
    """gwcelery worker and beat for one transport."""

    def __init__(self, env, folder, name):
        self.env = env
        self.folder = folder
        self.name = name
        self.procs = []

    def start(self, beat=True):
        hostname = f'bench-lvalert-{len(self.procs)}@{socket.gethostname()}'
        args = [['worker', '-Q', 'celery', '-c', '6', '-n', hostname,
                 '-l', 'info', '--without-mingle', '--without-gossip']]
        if beat:
            args.append(['beat', '-l', 'info',
                         '-s', str(self.folder / f'{self.name}-beat')])
        for i, a in enumerate(args):
            log = open(self.folder / f'{self.name}-{a[0]}-{len(self.procs)}.log',
                       'w')
            self.procs.append(subprocess.Popen(
                [sys.executable, '-m', 'gwcelery', *a], env=self.env,
                cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True))
        return self

    def stop_workers(self):
        self.stop(only='worker')

    def stop(self, only=None):
        for proc in self.procs:
            if only and only not in proc.args:
                continue
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            if only and only not in proc.args:
                continue
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


def run_transport(name, lvalert_url, broker, folder, args, publisher_args,
                  netrc=None):
    import redis

    from benchmarks.lvalert_handlers import NODE, RECORDS_KEY
    from gwcelery import app
    from gwcelery.lvalert.publisher import Publisher

    env = {**os.environ, 'CELERY_CONFIG_MODULE': CONF,
           'CELERY_BROKER_URL': broker, 'CELERY_RESULT_BACKEND': broker,
           'GWCELERY_BENCH_LVALERT_URL': lvalert_url,
           'PYTHONPATH': str(ROOT)}
    if netrc:
        env['NETRC'] = str(netrc)
    client = redis.Redis.from_url(broker)
    client.flushdb()
    app.conf.broker_url = app.conf.result_backend = broker
    from benchmarks import lvalert_handlers  # registers the handler here too

    def records():
        return [json.loads(r) for r in client.lrange(RECORDS_KEY, 0, -1)]

    procs = Processes(env, folder, name).start()
    result = {}
    try:
        with Publisher.from_url(
                lvalert_url, *publisher_args,
                node_max_items=args.xmpp_node_max_items) as publisher:
            publisher.create_node(NODE)
            # The listener is up when a probe comes through.
            next_probe = 0.0
            deadline = time.monotonic() + 120
            while not any(r['kind'] == 'probe' for r in records()):
                if time.monotonic() > deadline:
                    raise TimeoutError(f'{name}: listener never came up')
                if time.monotonic() > next_probe:
                    publisher.publish(NODE, {'kind': 'probe'})
                    next_probe = time.monotonic() + 1
                time.sleep(0.05)
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
                        time.sleep(pause)
                wait_for(lambda: sum(r['kind'] == kind for r in records())
                     >= args.count, 120, f'{name} {kind} records')
            latencies = {}
            for kind in ('lvalert', 'celery'):
                mine = [r for r in records() if r['kind'] == kind]
                assert sorted(r['n'] for r in mine) == list(range(args.count))
                lat = [1e3 * (r['start'] - r['sent']) for r in mine]
                latencies[kind] = {
                    'p50_ms': percentile(lat, 0.5),
                    'p99_ms': percentile(lat, 0.99),
                    'max_ms': max(lat), 'count': len(lat)}
            result['publish_to_handler'] = latencies['lvalert']
            result['celery_baseline'] = latencies['celery']
            result['overhead_p50_ms'] = (latencies['lvalert']['p50_ms']
                                         - latencies['celery']['p50_ms'])

            # Recovery: publish while no listener runs.
            procs.stop_workers()
            client.delete(RECORDS_KEY)
            for n in range(args.missed):
                publisher.publish(NODE, {'n': n, 'kind': 'missed',
                                         'sent': time.time()})
            restarted = time.monotonic()
            procs.start(beat=False)
            try:
                wait_for(lambda: len(records()) >= min(args.missed,
                                                   args.expect_xmpp_kept
                                                   if name == 'xmpp'
                                                   else args.missed),
                     120, f'{name} recovered items')
            except TimeoutError:
                pass
            time.sleep(2)  # stragglers
            got = sorted({r['n'] for r in records() if r['kind'] == 'missed'})
            result['recovery'] = {
                'published_while_down': args.missed,
                'recovered': len(got),
                'duplicates': len(records()) - len(got),
                'oldest_recovered': got[0] if got else None,
                'seconds_after_worker_start': round(
                    time.monotonic() - restarted - 2, 1)}
    finally:
        procs.stop()
        client.close()
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--count', type=int, default=1000)
    parser.add_argument('--rate', type=float, default=100.0,
                        help='alerts published per second')
    parser.add_argument('--missed', type=int, default=150,
                        help='alerts published while no listener runs')
    parser.add_argument('--xmpp-node-max-items', default='max',
                        help="items an XMPP node keeps: 'max' (default), a "
                             "number, or 'default' for prosody's own (20)")
    parser.add_argument('--output', default=str(
        ROOT / 'benchmarks' / 'results' / 'lvalert.json'))
    args = parser.parse_args()
    if args.xmpp_node_max_items == 'default':
        args.xmpp_node_max_items = None
    # What prosody keeps (its pubsub_max_items is 100 in the test server).
    args.expect_xmpp_kept = (20 if args.xmpp_node_max_items is None
                             else 100 if args.xmpp_node_max_items == 'max'
                             else int(args.xmpp_node_max_items))
    results_node = args.xmpp_node_max_items

    from gwcelery.deployment import find_redis_server
    from tests.fixtures.lvalert import PUBLISHER, Prosody

    folder = Path(tempfile.mkdtemp(prefix='gwcelery-bench-lvalert-'))
    redis_port = free_port()
    redis_proc = subprocess.Popen(
        [find_redis_server(), '--port', str(redis_port), '--bind',
         '127.0.0.1', '--save', '', '--appendonly', 'no',
         '--dir', str(folder)],
        stdout=open(folder / 'redis.log', 'w'), stderr=subprocess.STDOUT)
    broker = f'redis://127.0.0.1:{redis_port}/0'
    prosody = None
    results = {'count': args.count, 'rate_per_s': args.rate,
               'xmpp_node_max_items': results_node}
    try:
        wait_for(lambda: _listening(redis_port), 20, 'redis-server')
        results['redis'] = run_transport(
            'redis', broker, broker, folder, args, ())
        if shutil.which('prosody'):
            (folder / 'prosody').mkdir()
            prosody = Prosody(folder / 'prosody', free_port())
            prosody.start()
            results['xmpp'] = run_transport(
                'xmpp', prosody.url, broker, folder, args, PUBLISHER,
                netrc=prosody.netrc)
        else:
            print('prosody is not installed: XMPP skipped')
    finally:
        if prosody:
            prosody.stop()
        redis_proc.terminate()
        redis_proc.wait()

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
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps(results, indent=2))
    print(f'written to {args.output}  (logs in {folder})')


def _listening(port):
    try:
        with socket.create_connection(('127.0.0.1', port), 0.2):
            return True
    except OSError:
        return False


if __name__ == '__main__':
    main()
